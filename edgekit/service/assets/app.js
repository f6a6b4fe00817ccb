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

  // -- analytics: lines, zones, tracks with trails drawn over the stream; counts; recent events ----
  var LINE = "#ffd33d", ZONE = "#58a6ff", EVENTS_SHOWN = 12;
  var lastEvent = null, eventsSeen = [];

  function drawOverlay(state) {
    var canvas = $("overlay");
    if (!state.frame_size) { return; }
    canvas.hidden = false;
    canvas.width = state.frame_size[0];
    canvas.height = state.frame_size[1];
    var g = canvas.getContext("2d");
    var unit = Math.max(1, canvas.width / 320);
    g.clearRect(0, 0, canvas.width, canvas.height);
    g.font = Math.round(11 * unit) + "px sans-serif";
    g.lineWidth = 2 * unit;
    Object.keys(state.rules || {}).forEach(function (name) {
      var rule = state.rules[name], pts = rule.points;
      if (!pts || !pts.length) { return; }
      g.beginPath();
      g.moveTo(pts[0][0], pts[0][1]);
      pts.slice(1).forEach(function (p) { g.lineTo(p[0], p[1]); });
      var label;
      if (rule.type === "zone") {
        g.closePath();
        g.fillStyle = "rgba(88,166,255,0.15)";
        g.fill();
        g.strokeStyle = ZONE;
        label = name + ": " + rule.occupied + " inside";
      } else {
        g.strokeStyle = LINE;
        label = name + ": in " + rule.in_total + " / out " + rule.out_total;
      }
      g.stroke();
      g.fillStyle = rule.type === "zone" ? ZONE : LINE;
      var at = rule.type === "zone" ? pts[0] : [(pts[0][0] + pts[1][0]) / 2, (pts[0][1] + pts[1][1]) / 2];
      var width = g.measureText(label).width;
      g.fillText(label, Math.min(Math.max(0, at[0] + 3 * unit), canvas.width - width),
                 Math.max(12 * unit, at[1] + 12 * unit));
    });
    (state.tracks || []).forEach(function (track) {
      var colour = PALETTE[track["class"] % PALETTE.length];
      g.strokeStyle = colour;
      g.fillStyle = colour;
      var trail = track.trail || [];
      if (trail.length > 1) {
        g.beginPath();
        g.moveTo(trail[0][0], trail[0][1]);
        trail.slice(1).forEach(function (p) { g.lineTo(p[0], p[1]); });
        g.stroke();
      }
      var b = track.box;
      g.fillText("#" + track.track_id + (track.lost ? " (lost)" : ""), b[0],
                 Math.min(canvas.height - 2 * unit, b[3] + 12 * unit));
    });
  }

  function showCounts(state) {
    var body = $("counts").tBodies[0];
    body.textContent = "";
    Object.keys(state.rules || {}).forEach(function (name) {
      var rule = state.rules[name], tr = body.insertRow();
      tr.setAttribute("data-rule", name);
      tr.insertCell().textContent = name;
      tr.insertCell().textContent = rule.type === "zone" ?
        rule.occupied + " inside, " + rule.entered_total + " entered" :
        "in " + rule.in_total + " / out " + rule.out_total;
    });
    text("tracks", state.tracks_active + (state.tracks_active === 1 ? " track" : " tracks") + ", " +
      state.events_total + " events");
  }

  function when(t) {
    var d = new Date(t * 1000);
    return d.toLocaleTimeString();
  }

  function showEvents(events) {
    if (!events.length) { return; }
    lastEvent = events[events.length - 1].id;
    eventsSeen = eventsSeen.concat(events).slice(-EVENTS_SHOWN);
    var list = $("events");
    list.textContent = "";
    eventsSeen.slice().reverse().forEach(function (e) {
      var li = document.createElement("li");
      li.setAttribute("data-event", e.id);
      if (e.snapshot) {
        var img = document.createElement("img");
        img.alt = e.type;
        img.src = "v1/events/" + encodeURIComponent(e.id) + "/crop.jpg";
        li.appendChild(img);
      }
      var what = document.createElement("span");
      what.textContent = e.type.replace("_", " ") + " " + e.rule + (e.direction ? " " + e.direction : "") +
        " #" + e.track_id + " " + e.label;
      var at = document.createElement("span");
      at.className = "when";
      at.textContent = " " + when(e.time);
      what.appendChild(at);
      li.appendChild(what);
      list.appendChild(li);
    });
  }

  function pollAnalytics() {
    var url = "v1/events?limit=" + EVENTS_SHOWN + (lastEvent ? "&since=" + encodeURIComponent(lastEvent) : "");
    return Promise.all([getJSON("v1/tracks"), getJSON(url)]).then(function (answers) {
      if (answers[0].status === 404) { $("analytics").hidden = true; return; }
      $("analytics").hidden = false;
      if (answers[0].ok) { drawOverlay(answers[0].body); showCounts(answers[0].body); }
      if (answers[1].ok) { showEvents(answers[1].body.events || []); }
    });
  }

  function poll() {
    Promise.all([getJSON("v1/status"), getJSON("v1/latest")]).then(function (answers) {
      if (answers[0].ok) { showStatus(answers[0].body); }
      if (answers[1].ok) { showResult(answers[1].body); }
      if (answers[0].status === 401) { $("ready").textContent = "unauthorized: open /?token=..."; }
      return pollAnalytics();
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
