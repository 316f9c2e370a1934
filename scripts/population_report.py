"""Markdown tables of the population-validation results (JSON from scripts/population_validation.py).

Usage:
    python scripts/population_report.py docs/population_recovery.json      # recovery table
    python scripts/population_report.py docs/population_selection_main.json  # selection table
    python scripts/population_report.py --compare A.json B.json              # KS and coverage, A vs B

The tables in docs/population.md are this script's output.
"""

from __future__ import annotations

import json
import sys

DERIVED = ("log_mstar", "log_sfr_100myr", "mass_weighted_age")


def recovery_table(d: dict) -> str:
    rep = d["recovery"]
    floor = rep.get("catalog_noise_floor")
    many = len(rep["members"]) > 1
    head = ["quantity", "W1", "W1/σ_truth", "KS"]
    if many:
        head += ["W1 per flow (min–max)", "KS per flow (min–max)", "coverage"]
    if floor:
        head += ["KS floor"]
    lines = [
        f"{d['n_galaxies']} galaxies, {d['n_flows']} flow(s); "
        f"training {sum(d['seconds_per_flow']):.0f} s in all "
        f"({', '.join(f'{s:.0f}' for s in d['seconds_per_flow'])} s per flow), {d['machine']}.",
        f"Command: `{d['command']}`",
        "",
        "| " + " | ".join(head) + " |",
        "|---|" + "---:|" * (len(head) - 1),
    ]
    for n in rep["names"]:
        e = rep["ensemble"][n]
        cells = [
            f"*{n}*" if n in DERIVED else n,
            f"{e['w1']:.3f}",
            f"{e['w1_over_sd']:.2f}",
            f"{e['ks']:.3f}",
        ]
        if many:
            ks = [m[n]["ks"] for m in rep["members"]]
            w1 = [m[n]["w1"] for m in rep["members"]]
            cells += [f"{min(w1):.3f}–{max(w1):.3f}", f"{min(ks):.3f}–{max(ks):.3f}",
                      f"{rep['coverage'][n]:.2f}"]
        if floor:
            cells.append(f"{floor[n]['ks']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    mon = d.get("monitor", [])
    metric = "whitened magnitudes" if d.get("config", {}).get("whiten", False) else "raw magnitudes"
    if mon:
        lines += [
            "",
            f"Monitor loss (sliced W2²/2 on fixed draws, {metric}) per flow, start → end, and the "
            "data-vs-data floor: "
            + "; ".join(f"{m['monitor_initial']:.2f} → {m['monitor_final']:.4f}" for m in mon)
            + f" (floor {mon[0]['monitor_floor']:.4f}).",
        ]
    by_size = rep.get("coverage_by_ensemble_size")
    if by_size:
        sizes = sorted(by_size, key=int)
        lines += ["", "Mean coverage of random m-flow subsets of this ensemble:", "",
                  "| quantity | " + " | ".join(f"m = {m}" for m in sizes) + " |",
                  "|---|" + "---:|" * len(sizes)]
        for n in rep["names"]:
            lines.append("| " + " | ".join([f"*{n}*" if n in DERIVED else n]
                                           + [f"{by_size[m][n]:.2f}" for m in sizes]) + " |")
        mean = [sum(by_size[m].values()) / len(by_size[m]) for m in sizes]
        lines.append("| **mean** | " + " | ".join(f"{v:.2f}" for v in mean) + " |")
        # m members and the truth exchangeable: the truth is outside their range with probability 2/(m+1)
        lines.append("| *calibrated ensemble, (m−1)/(m+1)* | "
                     + " | ".join(f"{(int(m) - 1) / (int(m) + 1):.2f}" for m in sizes) + " |")
    return "\n".join(lines)


def selection_table(d: dict) -> str:
    lines = [
        f"Parent {d['parent']['z_range'][0]} < z < {d['parent']['z_range'][1]}, "
        f"{d['parent']['log_mass_range'][0]} < log M < {d['parent']['log_mass_range'][1]}; "
        f"{d['n_galaxies']} galaxies with r < 19.8 ({100 * d['selected_fraction']:.0f} % of the parent). "
        f"One flow each; {d['without']['seconds']:.0f} s without, "
        f"{d['with']['seconds']:.0f} s with selection.",
        f"Command: `{d['command']}`",
        "",
        "| quantity | catalog vs parent: W1 (KS) | fit without selection vs parent "
        "| fit with selection vs parent |",
        "|---|---:|---:|---:|",
    ]
    for n in ("redshift", "log_mass", *DERIVED, "log_z", "tau_ism"):
        c, a, b = d["catalog_vs_parent"][n], d["without"]["vs_parent"][n], d["with"]["vs_parent"][n]
        lines.append("| " + " | ".join([n] + [f"{x['w1']:.3f} ({x['ks']:.3f})" for x in (c, a, b)]) + " |")
    return "\n".join(lines)


def compare_table(a: dict, b: dict) -> str:
    """Ensemble KS (and coverage where both have several flows) of two recovery runs side by side."""
    ra, rb = a["recovery"], b["recovery"]
    cov = len(ra["members"]) > 1 and len(rb["members"]) > 1
    head = ["quantity", "KS A", "KS B"] + (["coverage A", "coverage B"] if cov else [])
    lines = [f"A: `{a['command']}`", f"B: `{b['command']}`", "",
             "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for n in ra["names"]:
        cells = [f"*{n}*" if n in DERIVED else n, f"{ra['ensemble'][n]['ks']:.3f}",
                 f"{rb['ensemble'][n]['ks']:.3f}"]
        if cov:
            cells += [f"{ra['coverage'][n]:.2f}", f"{rb['coverage'][n]:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--compare"]:
        a, b = (json.load(open(p)) for p in sys.argv[2:4])
        print(compare_table(a, b))
        return
    for path in sys.argv[1:]:
        d = json.load(open(path))
        print(recovery_table(d) if "recovery" in d else selection_table(d))
        print()


if __name__ == "__main__":
    main()
