#!/usr/bin/env python3
"""Plots for the benchmark harness: python3 meson-scripts/plot.py RESULTS.json OUTDIR

Writes, per topology T (pcap-replay, vhost) that ran:
  mpps-T.png         Rampart Mpps in per profile next to the dpdk-testpmd io baseline
                     (and Open vSwitch-DPDK on vhost); bars = medians, whiskers = min..max
  rule_scaling-T.png Mpps in against the policy count (log scale)
  deny_storm_events-T.png  events per second in the deny storm: generated, delivered
                     to the consumer, dropped for the consumer, ring overflow
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def med(s):
    return s["median"] if s else None


def err(s):
    if not s:
        return (0, 0)
    return (s["median"] - s["min"], s["max"] - s["median"])


def subtitle(meta, topology):
    return "{} · {} run(s), medians with min–max · nproc {} · {} · {}".format(
        topology, meta.get("runs"), meta.get("nproc"),
        meta.get("cpu_model", ""), meta.get("date", ""))


# The systems of a topology's bar chart: summary key, label, colour.
SYSTEMS = (("rampart_mpps_in", "Rampart (Mpps in)", "#1f77b4"),
           ("testpmd_mpps", "testpmd io (Mpps in)", "#999999"),
           ("ovs_mpps_in", "Open vSwitch-DPDK (Mpps in)", "#ff7f0e"))


def mpps(summary, meta, topology, out):
    names = [p["profile"] for p in summary]
    x = range(len(names))
    systems = [s for s in SYSTEMS if any(p.get(s[0]) for p in summary)]
    w = 0.8 / len(systems)
    fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(names) + 2), 4.8))
    for k, (key, label, color) in enumerate(systems):
        off = (k - (len(systems) - 1) / 2) * w
        vals = [med(p.get(key)) or 0 for p in summary]
        errs = list(zip(*[err(p.get(key)) for p in summary]))
        bars = ax.bar([i + off for i in x], vals, w, yerr=errs, capsize=3, label=label, color=color)
        for b, v in zip(bars, vals):
            if v:
                ax.annotate("{:.2f}".format(v), (b.get_x() + b.get_width() / 2, v),
                            ha="center", va="bottom", fontsize=7, xytext=(0, 2),
                            textcoords="offset points")
    for i, p in enumerate(summary):
        r = p.get("ratio_to_testpmd")
        if r is not None:
            ax.annotate("×{:.2f}".format(r), (i, 0), ha="center", va="bottom", fontsize=7,
                        color="white", xytext=(-(len(systems) - 1) * w * 40 / 2, 3),
                        textcoords="offset points")
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylabel("Mpps")
    ax.set_title("Rampart vs the baselines, {} (1 worker)\n{}".format(
        topology, subtitle(meta, topology)), fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "mpps-{}.png".format(topology)), dpi=120)
    plt.close(fig)


def scaling(summary, meta, topology, out):
    pts = sorted((p for p in summary if p.get("rules")), key=lambda p: p["rules"])
    if not pts:
        return False
    n = [p["rules"] for p in pts]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    r = [med(p["rampart_mpps_in"]) for p in pts]
    ax.errorbar(n, r, yerr=list(zip(*[err(p["rampart_mpps_in"]) for p in pts])), marker="o",
                capsize=3, label="Rampart (policy lookup per packet)")
    if all(p.get("testpmd_mpps") for p in pts):
        ax.errorbar(n, [med(p["testpmd_mpps"]) for p in pts],
                    yerr=list(zip(*[err(p["testpmd_mpps"]) for p in pts])), marker="s",
                    capsize=3, color="#999999", label="testpmd io")
    if all(p.get("ovs_mpps_in") for p in pts):
        ax.errorbar(n, [med(p["ovs_mpps_in"]) for p in pts],
                    yerr=list(zip(*[err(p["ovs_mpps_in"]) for p in pts])), marker="^",
                    capsize=3, color="#ff7f0e", label="Open vSwitch-DPDK (OpenFlow drop rules)")
    for x, y, p in zip(n, r, pts):
        if y is not None and p.get("ratio_to_10_rules") is not None:
            ax.annotate("{:.2f}× of 10".format(p["ratio_to_10_rules"]), (x, y), fontsize=7,
                        xytext=(4, 6), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("policies (each with its own address-book entry)")
    ax.set_ylabel("Mpps in")
    ax.set_title("Rule-count scaling, {}\n{}".format(topology, subtitle(meta, topology)),
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "rule_scaling-{}.png".format(topology)), dpi=120)
    plt.close(fig)
    return True


def deny_storm(summary, meta, topology, out):
    p = next((p for p in summary if p["profile"] == "deny-storm"), None)
    if not p:
        return False
    keys = [("events_generated_per_s", "generated"), ("events_delivered_per_s", "delivered"),
            ("events_consumer_dropped_per_s", "dropped (consumer)"),
            ("events_ring_overflow_per_s", "ring overflow")]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    vals = [(med(p.get(k)) or 0) / 1e6 for k, _ in keys]
    errs = list(zip(*[tuple(e / 1e6 for e in err(p.get(k))) for k, _ in keys]))
    bars = ax.bar([label for _, label in keys], vals, yerr=errs, capsize=3,
                  color=["#1f77b4", "#2ca02c", "#d62728", "#ff7f0e"])
    for b, v in zip(bars, vals):
        ax.annotate("{:.2f}".format(v), (b.get_x() + b.get_width() / 2, v), ha="center",
                    va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    rin = med(p.get("rampart_mpps_in"))
    ax.set_ylabel("M events/s")
    ax.set_title("Deny storm, every packet logged (Rampart {} Mpps in), {}\n{}".format(
        "{:.2f}".format(rin) if rin else "?", topology, subtitle(meta, topology)), fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "deny_storm_events-{}.png".format(topology)), dpi=120)
    plt.close(fig)
    return True


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        res = json.load(f)
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    meta = res["meta"]
    written = []
    for topology in ("pcap-replay", "vhost"):
        summary = [p for p in res["summary"] if p.get("topology") == topology]
        if not summary:
            continue
        mpps(summary, meta, topology, out)
        written.append("mpps-{}.png".format(topology))
        if scaling(summary, meta, topology, out):
            written.append("rule_scaling-{}.png".format(topology))
        if deny_storm(summary, meta, topology, out):
            written.append("deny_storm_events-{}.png".format(topology))
    print("plot: wrote " + ", ".join(os.path.join(out, w) for w in written))


if __name__ == "__main__":
    main()
