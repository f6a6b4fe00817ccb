// edgekit status page: live figures from /v1/status and /v1/latest, stream from /v1/stream.mjpg.
// With a token, open the page once as /?token=...: the server answers with a session cookie that
// the browser sends with the requests below; the token is then removed from the address bar.
(function () {
  "use strict";
  var POLL_MS = 500;
  // the same colours as edgekit.vision.draw.PALETTE (BGR there), by class index
  var PALETTE = ["#ff3838", "#ff9d97", "#ff701f", "#ffb21d", "#cfd231", "#48f90a", "#92cc17", "#3ddb86", "#1a9334",
                 "#00d4bb", "#2c99a8", "#00c2ff", "#344593", "#6473ff", "#0018ec", "#8438ff", "#520085", "#cb38ff"];
  var $ = function (id) { return document.getElementById(id); };

  if (window.location.search.indexOf("token=") >= 0 && window.history.replaceState) {
    window.history.replaceState(null, "", window.location.pathname);
  }

  function text(id, value) { $(id).textContent = (value === undefined || value === null) ? "-" : String(value); }

  function fixed(value, digits) { return typeof value === "number" ? value.toFixed(digits) : value; }

  function duration(seconds) {
    if (typeof seconds !== "number") { return seconds; }
    var s = Math.floor(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? h + "h " : "") + (h || m ? m + "m " : "") + (s % 60) + "s";
  }

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", cache: "no-store"}).then(function (r) {
      return r.json().then(function (body) { return {ok: r.ok, status: r.status, body: body}; });
    });
  }

  function row(label, score, index) {
    var div = document.createElement("div");
    div.className = "row";
    var name = document.createElement("span");
    name.className = "label";
    name.style.color = PALETTE[(index || 0) % PALETTE.length];
    name.textContent = label;
    var bar = document.createElement("span");
    bar.className = "bar";
    var fill = document.createElement("span");
    fill.style.width = Math.round(100 * Math.max(0, Math.min(1, score))) + "%";
    fill.style.background = name.style.color;
    bar.appendChild(fill);
    var value = document.createElement("span");
    value.className = "score";
    value.textContent = (100 * score).toFixed(1) + "%";
    div.appendChild(name);
    div.appendChild(bar);
    div.appendChild(value);
    return div;
  }

  function showResult(record) {
    var box = $("result");
    var result = record.result || {};
    box.textContent = "";
    var items = result.task === "classification" ? (result.top || []) : (result.detections || []);
    if (result.task === "detection") {
      var count = document.createElement("p");
      count.id = "count";
      count.textContent = items.length + (items.length === 1 ? " object" : " objects");
      box.appendChild(count);
    }
    items.slice(0, 8).forEach(function (item) { box.appendChild(row(item.label, item.score, item.index)); });
    var top = items.length ? items[0].label : "";
    box.setAttribute("data-top", top);
    var seq = document.createElement("p");
    seq.className = "muted";
    seq.textContent = "frame #" + record.seq + (record.source ? " from " + record.source : "");
    box.appendChild(seq);

    var body = $("latency").tBodies[0];
    body.textContent = "";
    Object.keys(record.latency_ms || {}).forEach(function (stage) {
      var tr = body.insertRow();
      tr.insertCell().textContent = stage;
      tr.insertCell().textContent = fixed(record.latency_ms[stage], 1);
    });
  }

  function showStatus(status) {
    var ready = $("ready");
    ready.textContent = status.ready ? "ready" : "not ready";
    ready.className = "badge " + (status.ready ? "ok" : "bad");
    text("device", status.device);
    text("fps", fixed(status.fps, 1));
    text("frames", status.frames);
    text("dropped", status.dropped);
    text("reconnects", status.reconnects);
    text("uptime", duration(status.uptime_s));
    text("model", status.model);
    text("precision", status.precision);
    text("backend", status.backend);
    text("source", status.source);
    text("streams", status.http ? status.http.streams + " / " + status.http.max_streams : "-");
    var proc = status.process || {};
    text("memory", proc.rss_mb === undefined ? "-" : fixed(proc.rss_mb, 0) + " MB, " + proc.threads + " threads, " +
      proc.open_fds + " files");
    var error = $("error");
    error.hidden = !status.last_error;
    error.textContent = status.last_error ? "last error: " + status.last_error : "";
  }

  function poll() {
    Promise.all([getJSON("v1/status"), getJSON("v1/latest")]).then(function (answers) {
      if (answers[0].ok) { showStatus(answers[0].body); }
      if (answers[1].ok) { showResult(answers[1].body); }
      if (answers[0].status === 401) { $("ready").textContent = "unauthorized: open /?token=..."; }
    }).catch(function () {
      var ready = $("ready");
      ready.textContent = "offline";
      ready.className = "badge bad";
    }).then(function () { window.setTimeout(poll, POLL_MS); });
  }

  // The stream is attached after the page has loaded (an endless image would otherwise hold the
  // load event). When it is refused (stream limit) or breaks, fall back to polling snapshots.
  function startStream() {
    var img = $("stream");
    var snapshots = null;
    img.onerror = function () {
      if (snapshots) { return; }
      $("stream-note").textContent = "stream unavailable: showing snapshots";
      snapshots = window.setInterval(function () { img.src = "v1/snapshot.jpg?t=" + Date.now(); }, 1000);
    };
    img.src = "v1/stream.mjpg";
  }

  window.addEventListener("load", function () { startStream(); });
  poll();
})();
