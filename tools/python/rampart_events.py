#!/usr/bin/env python3
"""Read a Rampart event stream and print one JSON object per record.

A second-language reader proving that schema/events.fbs is the contract:
it uses only the official `flatbuffers` package and the Python code that
flatc generates from the schema (not committed; generate it with
`flatc --python -o GEN_DIR schema/events.fbs`).

    rampart_events.py --gen GEN_DIR FILE           # a stream file ('-' = stdin)
    rampart_events.py --gen GEN_DIR --socket PATH  # the live event socket

Stream framing: 4-byte little-endian length, then a flatbuffer whose root
is rampart.events.Record.
"""

import argparse
import datetime
import ipaddress
import json
import os
import re
import socket
import struct
import sys


def _load(gen_dir):
    sys.path.insert(0, gen_dir)
    import importlib

    mods = {}
    for name in (
        "Record", "Body", "PolicyDeny", "ScreenDrop", "FilterLog", "SessionOpen",
        "SessionClose", "Hello", "NameTable", "Stats", "Loss", "ConfigReject", "ScreenOption",
        "CloseReason", "FilterAction", "Direction", "DenyAction", "ScreenAction",
        "EventType", "ScreenEpisode", "EpisodePhase",
    ):
        mods[name] = importlib.import_module("rampart.events." + name)
    return mods


def _enum_names(cls):
    """value -> kebab-case name ('SynFin' -> 'syn-fin')."""
    out = {}
    for k, v in vars(cls).items():
        if k.startswith("_") or not isinstance(v, int):
            continue
        out[v] = re.sub(r"(?<!^)([A-Z])", r"-\1", k).lower()
    return out


NO16 = 0xFFFF
NO32 = 0xFFFFFFFF
EVENT_TYPES = [
    "policy_deny", "screen_drop", "filter_log", "session_open", "session_close", "screen_episode",
]


class Reader:
    def __init__(self, gen_dir):
        self.m = _load(gen_dir)
        m = self.m
        self.screen_option = _enum_names(m["ScreenOption"].ScreenOption)
        self.close_reason = _enum_names(m["CloseReason"].CloseReason)
        self.filter_action = _enum_names(m["FilterAction"].FilterAction)
        self.direction = _enum_names(m["Direction"].Direction)
        self.episode_phase = _enum_names(m["EpisodePhase"].EpisodePhase)
        self.body = {v: k for k, v in vars(m["Body"].Body).items() if not k.startswith("_")}
        self.names = {}  # generation -> dict of lists
        self.identity = None  # (node, boot_id) from the last hello that has one
        self.cluster = None  # [cluster] name from the last hello, if a pair's node

    # -- helpers
    @staticmethod
    def _ts(ns):
        secs, frac = divmod(ns, 1_000_000_000)
        t = datetime.datetime.fromtimestamp(secs, tz=datetime.timezone.utc)
        return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%09dZ" % frac

    @staticmethod
    def _ip(raw, version):
        b = bytes(raw)
        if version == 4:
            return str(ipaddress.IPv4Address(b[12:16]))
        return str(ipaddress.IPv6Address(b))

    def _name(self, gen, kind, ident, none):
        if ident == none:
            return None
        table = self.names.get(gen, {}).get(kind, [])
        if ident < len(table):
            return table[ident]
        return "#%d" % ident

    def _strings(self, obj, n, get):
        return [get(obj, i) for i in range(n)]

    # -- records
    def decode(self, frame):
        """frame: the size-prefixed record bytes."""
        m = self.m
        rec = m["Record"].Record.GetRootAs(frame, 4)
        kind = self.body.get(rec.BodyType(), "NONE")
        tab = rec.Body()
        if tab is None:
            return {"type": "unknown"}
        cls = getattr(m.get(kind), kind, None) if kind in m else None
        if cls is None:
            return {"type": "unknown", "body_type": rec.BodyType()}
        t = cls()
        t.Init(tab.Bytes, tab.Pos)
        handler = getattr(self, "_" + kind)
        return handler(t)

    def _meta(self, t, type_name):
        meta = t.Meta()
        gen = meta.Generation()
        out = {
            "type": type_name,
            "ts": self._ts(meta.TsNs()),
            "ts_ns": meta.TsNs(),
            "worker": meta.Worker(),
            "seq": meta.Seq(),
            "generation": gen,
            "ip_version": meta.IpVersion(),
            "src_ip": self._ip(meta.Src(), meta.IpVersion()),
            "dst_ip": self._ip(meta.Dst(), meta.IpVersion()),
            "src_port": meta.SrcPort(),
            "dst_port": meta.DstPort(),
            "protocol": meta.Protocol(),
            "icmp_type": meta.IcmpType(),
            "icmp_code": meta.IcmpCode(),
            "interface": self._name(gen, "interfaces", meta.Ingress(), NO16),
            "egress_interface": self._name(gen, "interfaces", meta.Egress(), NO16),
            "from_zone": self._name(gen, "zones", meta.FromZone(), NO16),
            "to_zone": self._name(gen, "zones", meta.ToZone(), NO16),
        }
        if self.identity is not None:
            # Stable across restarts and machines: node:boot_id:worker:seq.
            node, boot_id = self.identity
            out["event_id"] = "%s:%016x:%d:%d" % (node, boot_id, meta.Worker(), meta.Seq())
        return out, gen

    def _snippet(self, t, out):
        if hasattr(t, "SnippetLength") and not t.SnippetIsNone():
            out["snippet"] = bytes(t.Snippet(i) for i in range(t.SnippetLength())).hex()
        self._repeat(t, out)

    def _repeat(self, t, out):
        # [events.aggregate]: the packets one record stands for, from its
        # timestamp to last_ts (absent from producers without the fields).
        last = t.LastTsNs() if hasattr(t, "LastTsNs") else 0
        if last:
            out["count"] = t.Count()
            out["first_ts"] = out["ts"]
            out["last_ts"] = self._ts(last)
            out["last_ts_ns"] = last

    def _PolicyDeny(self, t):
        out, gen = self._meta(t, "policy_deny")
        out["policy_id"] = t.Policy()
        out["policy"] = self._name(gen, "policies", t.Policy(), NO32)
        out["action"] = {0: "deny", 1: "reject", 2: "audit"}.get(t.Action(), str(t.Action()))
        if t.SessionId():
            out["session_id"] = t.SessionId()
        self._application(t, gen, out)
        self._snippet(t, out)
        return out

    def _ScreenDrop(self, t):
        out, gen = self._meta(t, "screen_drop")
        out["screen"] = self.screen_option.get(t.Option(), str(t.Option()))
        out["screen_profile"] = self._name(gen, "screens", t.Screen(), NO16)
        out["zone"] = out["from_zone"]
        out["action"] = "alarm" if t.Action() == 1 else "drop"
        self._snippet(t, out)
        return out

    def _FilterLog(self, t):
        out, gen = self._meta(t, "filter_log")
        out["filter"] = self._name(gen, "filters", t.Filter(), NO16)
        terms = self.names.get(gen, {}).get("terms", [])
        f = t.Filter()
        out["term"] = (
            terms[f][t.Term()] if f < len(terms) and t.Term() < len(terms[f]) else "#%d" % t.Term()
        )
        out["action"] = self.filter_action.get(t.Action(), str(t.Action()))
        out["direction"] = self.direction.get(t.Direction(), str(t.Direction()))
        self._snippet(t, out)
        return out

    def _application(self, t, gen, out):
        app = self._name(gen, "applications", t.Application(), NO16)
        if app is not None:
            out["application"] = app

    def _SessionOpen(self, t):
        out, gen = self._meta(t, "session_open")
        out["session_id"] = t.SessionId()
        self._session_identity(t, out, "open")
        out["policy_id"] = t.Policy()
        out["policy"] = self._name(gen, "policies", t.Policy(), NO32)
        self._application(t, gen, out)
        return out

    def _ScreenEpisode(self, t):
        out, gen = self._meta(t, "screen_episode")
        out["screen"] = self.screen_option.get(t.Option(), str(t.Option()))
        out["screen_profile"] = self._name(gen, "screens", t.Screen(), NO16)
        out["zone"] = out["from_zone"]
        out["phase"] = self.episode_phase.get(t.Phase(), str(t.Phase()))
        out["action"] = "alarm" if t.AlarmOnly() else "drop"
        out["started"] = self._ts(t.StartedNs())
        out["last_drop"] = self._ts(t.LastDropNs())
        out["packets"] = t.Packets()
        out["peak_pps"] = t.PeakPps()
        # A scan's or sweep's source is its subject: the list names targets.
        key = "top_targets" if out["screen"] in ("port-scan", "ip-sweep") else "top_sources"
        out[key] = []
        for i in range(t.TopSourcesLength()):
            c = t.TopSources(i)
            raw = bytes(c.Addr(j) for j in range(16))
            v4 = raw[:12] == b"\0" * 10 + b"\xff\xff"
            out[key].append(
                {"ip": self._ip(raw, 4 if v4 else 6), "packets": c.Packets()}
            )
        return out

    def _session_identity(self, t, out, kind):
        # A pair's node: the session's identity, the same from both nodes.
        origin = t.Origin() if hasattr(t, "Origin") else 0
        if self.cluster and origin:
            out["event_id"] = "%s:%016x:%d:%s" % (self.cluster, origin, t.SessionId(), kind)

    def _SessionClose(self, t):
        out, gen = self._meta(t, "session_close")
        out["session_id"] = t.SessionId()
        self._session_identity(t, out, "close")
        out["policy_id"] = t.Policy()
        out["policy"] = self._name(gen, "policies", t.Policy(), NO32)
        self._application(t, gen, out)
        out["reason"] = self.close_reason.get(t.Reason(), str(t.Reason()))
        out["packets_client"] = t.PacketsClient()
        out["bytes_client"] = t.BytesClient()
        out["packets_server"] = t.PacketsServer()
        out["bytes_server"] = t.BytesServer()
        out["elapsed_ns"] = t.ElapsedNs()
        out["elapsed_s"] = t.ElapsedNs() / 1e9
        return out

    def _Hello(self, t):
        p = t.Producer()
        out = {
            "type": "hello",
            "schema_version": t.SchemaVersion(),
            "generation": t.Generation(),
            "start_time_ns": t.StartTimeNs(),
            "producer": p.decode() if p is not None else None,
        }
        boot_id = t.BootId() if hasattr(t, "BootId") else 0
        if boot_id:
            node = (t.Node() or b"").decode()
            self.identity = (node, boot_id)
            out["node"] = node
            out["boot_id"] = "%016x" % boot_id
        cluster = t.Cluster() if hasattr(t, "Cluster") else None
        self.cluster = cluster.decode() if cluster else None
        if self.cluster:
            out["cluster"] = self.cluster
        return out

    def _NameTable(self, t):
        def names(n, get):
            return [(get(i).Name() or b"").decode() for i in range(n)]

        table = {
            "zones": names(t.ZonesLength(), t.Zones),
            "interfaces": names(t.InterfacesLength(), t.Interfaces),
            "policies": names(t.PoliciesLength(), t.Policies),
            "filters": names(t.FiltersLength(), t.Filters),
            "screens": names(t.ScreensLength(), t.Screens),
            "applications": [t.Applications(i).decode() for i in range(t.ApplicationsLength())],
        }
        table["terms"] = [
            [t.Filters(i).Terms(j).decode() for j in range(t.Filters(i).TermsLength())]
            for i in range(t.FiltersLength())
        ]
        self.names[t.Generation()] = table
        out = {"type": "names", "generation": t.Generation()}
        out.update(table)
        return out

    def _Stats(self, t):
        def per_type(n, get):
            return {EVENT_TYPES[i]: get(i) for i in range(min(n, len(EVENT_TYPES)))}

        events = {}
        for i in range(min(t.TotalsLength(), len(EVENT_TYPES))):
            c = t.Totals(i)
            events[EVENT_TYPES[i]] = {
                "generated": c.Generated(),
                "rate_limited": c.RateLimited(),
                "ring_overflow": c.RingOverflow(),
                "drained": c.Drained(),
            }
        return {
            "type": "stats",
            "ts": self._ts(t.TsNs()),
            "generation": t.Generation(),
            "consumer_id": t.ConsumerId(),
            "events": events,
            "delivered": per_type(t.DeliveredLength(), t.Delivered),
            "dropped": per_type(t.DroppedLength(), t.Dropped),
        }

    def _Loss(self, t):
        return {
            "type": "loss",
            "ts": self._ts(t.TsNs()),
            "consumer_id": t.ConsumerId(),
            "dropped": {
                EVENT_TYPES[i]: t.Dropped(i) for i in range(min(t.DroppedLength(), len(EVENT_TYPES)))
            },
        }

    def _ConfigReject(self, t):
        return {
            "type": "config_reject",
            "ts": self._ts(t.TsNs()),
            "generation": t.Generation(),
            "path": (t.Path() or b"").decode(),
            "errors": [t.Errors(i).decode() for i in range(t.ErrorsLength())],
        }


def frames(stream):
    """Yields size-prefixed frames (prefix included) from a binary stream."""
    while True:
        head = stream.read(4)
        if not head:
            return
        if len(head) < 4:
            raise EOFError("truncated length prefix")
        (n,) = struct.unpack("<I", head)
        body = stream.read(n)
        if len(body) < n:
            raise EOFError("truncated record")
        yield head + body


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gen", default=os.environ.get("RAMPART_PY_GEN", "generated"),
                    help="directory with the flatc --python output")
    ap.add_argument("--socket", help="read the live event socket at this path")
    ap.add_argument("file", nargs="?", help="stream file ('-' for stdin)")
    args = ap.parse_args(argv)
    reader = Reader(args.gen)
    if args.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(args.socket)
        stream = s.makefile("rb")
    elif args.file in (None, "-"):
        stream = sys.stdin.buffer
    else:
        stream = open(args.file, "rb")
    out = sys.stdout
    try:
        for frame in frames(stream):
            out.write(json.dumps(reader.decode(frame), sort_keys=True) + "\n")
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
