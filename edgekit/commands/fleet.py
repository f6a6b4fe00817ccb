"""`edgekit fleet status`: which boards publish to an MQTT broker, and what they run."""

import json
import os
import sys
import time

from edgekit.commands import _args

HELP = "fleet view: the devices publishing to an MQTT broker (online/offline, model, fps, temperature)"
DESCRIPTION = HELP + """.

Reads the retained `<prefix>/<device>/status` (online, or offline from the daemon's last will) and
`<prefix>/<device>/telemetry` messages every `edgekit serve` with an MQTT sink publishes.
The password, when the broker needs one, comes from the EDGEKIT_MQTT_PASSWORD environment variable."""


def add_arguments(parser):
    sub = _args.add_actions(parser)
    status = _args.add_action(sub, parser, "status", help="list the devices and what they run", description=DESCRIPTION)
    status.add_argument("--broker", required=True, metavar="HOST[:PORT]", help="MQTT broker (port 1883 by default)")
    status.add_argument("--prefix", default="edgekit", help="topic prefix the daemons use (default: edgekit)")
    status.add_argument("--wait", type=float, default=1.0, metavar="S",
                        help="seconds to listen for messages (default 1.0)")
    status.add_argument("--stale", type=float, default=60.0, metavar="S",
                        help="mark an online device stale when nothing came for S seconds (default 60)")
    status.add_argument("--username", help="broker user name")
    _args.add_json(status, "the devices")


def _age(seconds):
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return "%d%s ago" % (seconds // size, unit)
    return "%ds ago" % seconds


def _table(rows):
    from edgekit.table import format_table

    headers = ["device", "state", "model", "precision", "fps", "temp_c", "frames", "dropped", "last seen"]
    cells = [{"device": r["device"], "state": r["state"] + (" (stale)" if r["stale"] else ""), "model": r["model"],
              "precision": r["precision"], "fps": r["fps"], "temp_c": r["temperature_c"], "frames": r["frames"],
              "dropped": r["dropped"], "last seen": _age(r["age_s"])} for r in rows]
    return format_table(cells, headers, digits=1)


def run(args):
    from edgekit.errors import ConfigError
    from edgekit.fleet import collect

    if getattr(args, "action", None) != "status":
        raise ConfigError("`edgekit fleet` needs an action", hint="use `edgekit fleet status --broker HOST`")
    if args.wait < 0 or args.stale <= 0:
        raise ConfigError("--wait must be >= 0 and --stale > 0", hint="e.g. --wait 2 --stale 60")
    view = collect(args.broker, prefix=args.prefix, wait=args.wait, username=args.username,
                   password=os.environ.get("EDGEKIT_MQTT_PASSWORD"))
    now = time.time()
    rows = view.rows(now=now, stale_after=args.stale)
    if args.json:
        report = {"broker": args.broker, "prefix": args.prefix, "ts": now, "devices": rows,
                  "online": sum(1 for r in rows if r["state"] == "online"), "ignored_messages": view.ignored}
        sys.stdout.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
    elif rows:
        online = sum(1 for r in rows if r["state"] == "online")
        sys.stdout.write(_table(rows) + "\n%d device(s), %d online\n" % (len(rows), online))
    else:
        sys.stdout.write("no devices publish under %s/ on %s (listened %.1f s)\n" % (args.prefix, args.broker,
                                                                                   args.wait))
    return 0
