#!/usr/bin/env python3
"""Cross-fold check of false_match_probability on non-member audio (matcher/decision.h).

Splits the real-music fixture into two folds (tracks that share audio, found by trainspotter
itself, stay in one fold), ingests each fold as a catalogue, and cuts every clip of 5, 10 and 30 s
(at a stride of 2 items) out of each track to query against the *other* fold's catalogue, plus
silence, tones, noise, a sweep and espeak-ng speech (a minute each) against both. No clip's audio is in the
catalogue it is queried against, so every clip is a non-member. Prints, per clip length, how
often the best alignment's false-match probability fell at or below p (a calibrated model: at
most p of the queries), the calibration factor those counts support, and the strongest
non-member alignments.

  tools/null-calibration.sh                  # builds, fetches the fixture, ~1.5 minutes on 2 cores
  tools/null_calibration.py --bin build/bin --stride 4
  tools/null-calibration.sh --noise pink_0dB  # the queried tracks buried in pink noise first
"""
import argparse
import collections
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eval_accuracy as ev  # noqa: E402  (shared clip and grouping helpers)

LENGTHS = [19, 59, 222]  # items of a 5, 10 and 30 s clip
CLIP_SECONDS = {19: 5, 59: 10, 222: 30}
LEVELS = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bin", default="build/bin", help="folder with trainspotter, null_calibration")
    ap.add_argument("--music", default=os.environ.get(
        "TRAINSPOTTER_MUSIC_DIR", os.path.expanduser("~/.cache/trainspotter/music")))
    ap.add_argument("--work", default="build/null-calibration")
    ap.add_argument("--stride", type=int, default=2, help="items between consecutive clips")
    noises = sorted(d for d, (f, _, _) in ev.DISTORTIONS.items() if f and f.startswith("NOISE:"))
    ap.add_argument("--noise", choices=noises,
                    help="bury each queried track in this noise first (the catalogues stay clean)")
    ap.add_argument("--noise-reduced", action="store_true",
                    help="query each clip's noise-reduced version (the last phase variant of "
                         "`trainspotter query`) instead of its plain fingerprint; ~10x slower "
                         "per query, so a --stride of 8 is a fair start")
    ap.add_argument("--report-only", action="store_true",
                    help="print the report of the scores already in --work; query nothing")
    ap.add_argument("--shared-prefix", action="append", default=[], metavar="PREFIX",
                    help="leave out of the counts every query whose file and catalogue track "
                         "both start with PREFIX (an album whose tracks share stems that "
                         "whole-track queries did not all link); such pairs are listed")
    args = ap.parse_args()
    if any(not p for p in args.shared_prefix):
        ap.error("--shared-prefix needs a non-empty prefix (an empty one would leave out every "
                 "query)")
    if args.report_only:
        return report(args.work, "(scores of an earlier run)", args.shared_prefix)
    args.trainspotter = os.path.join(args.bin, "trainspotter")

    tracks = ev.fixture_tracks(args.music, "null_calibration")
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    groups = ev.shared_audio_groups(args, tracks)
    folds = ([], [])
    for g in sorted(groups, key=len, reverse=True):  # balance the folds' sizes
        min(folds, key=len).extend(g)
    synth = ev.synth_nonmembers(args.work, seconds=60)

    jobs = []
    for i, fold in enumerate(folds):
        lib = os.path.join(args.work, f"fold{i}")
        os.makedirs(lib)
        for t in fold:
            os.symlink(os.path.abspath(t), os.path.join(lib, os.path.basename(t)))
        cat = os.path.join(args.work, f"catalog{i}")
        r = ev.run([args.trainspotter, "ingest", "--catalog", cat, "--dataset", f"fold{i}", lib])
        if r.returncode != 0:
            sys.exit(f"null_calibration: ingest of fold {i} failed:\n{r.stderr}")
        queried = [noisy(args, t, i) for t in folds[1 - i]] if args.noise else folds[1 - i]
        others = queried + synth
        scores = os.path.join(args.work, f"scores{i}.txt")
        jobs.append(subprocess.Popen(
            [os.path.join(args.bin, "null_calibration"), "--catalog", cat, "--stride-items",
             str(args.stride), "--lengths", ",".join(map(str, LENGTHS)), "--scores", scores] +
            (["--noise-reduced"] if args.noise_reduced else []) + others,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    for j in jobs:
        _, err = j.communicate()
        if j.returncode != 0:
            sys.exit(f"null_calibration failed:\n{err}")

    return report(args.work, f"folds: {len(folds[0])} and {len(folds[1])} tracks; "
                  f"{len(synth)} synthetic files; stride {args.stride} items"
                  + (f"; queried tracks in {args.noise}" if args.noise else "")
                  + ("; noise-reduced queries" if args.noise_reduced else ""),
                  args.shared_prefix)


def noisy(args, track, fold):
    """A copy of `track` buried in --noise, for querying against catalogue `fold`."""
    out_dir = os.path.join(args.work, f"noisy{fold}")
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, os.path.splitext(os.path.basename(track))[0] + ".wav")
    err = ev.make_clip(track, 0.0, ev.duration_of(track), args.noise, out, seed=fold)
    if err:
        sys.exit(f"null_calibration: could not add {args.noise} to {track}: {err}")
    return out


def report(work, heading, shared_prefixes=()):
    for i in range(2):
        if not os.path.exists(os.path.join(work, f"scores{i}.txt")):
            sys.exit(f"null_calibration: no scores{i}.txt in {work} (run without --report-only)")
    rows = collections.defaultdict(list)
    strongest = []
    left_out = collections.Counter()  # (file, track) -> queries left out by --shared-prefix
    shared_pairs = set()
    for i in range(2):
        for line in open(os.path.join(work, f"scores{i}.txt")):
            items, _log10_chance, fmp, path, at, track = line.rstrip("\n").split("\t")
            name, fmp = os.path.basename(path), float(fmp)
            if any(name.startswith(p) and track.startswith(p) for p in shared_prefixes):
                left_out[(name, track)] += 1
                if fmp <= LEVELS[-1]:
                    shared_pairs.add(tuple(sorted((name, track))))
                continue
            rows[int(items)].append(fmp)
            strongest.append((fmp, int(items), name, int(at), track))
    print(heading)
    print(f"\n{'clip':>6} {'queries':>8}" + "".join(f"{'fmp<=' + format(p, 'g'):>12}"
                                                 for p in LEVELS) + "   factor to spare")
    for items in sorted(rows):
        v = sorted(rows[items])
        n = len(v)
        counts = [sum(1 for x in v if x <= p) for p in LEVELS]
        # The model is calibrated at level p if at most p * n queries score <= p. The factor by
        # which every fmp could shrink with that still true at every level down to 1 / n: the
        # (p n + 1)-th smallest fmp must stay above p. (fmp is clamped to 1, so at the 0.1 level
        # no more than 10x can show.)
        spare = min((v[int(p * n)] / p for p in LEVELS if int(p * n) < n), default=float("inf"))
        cells = "".join(f"{c:>6} ({c / n:.0e})" if c else f"{0:>12}" for c in counts)
        print(f"{CLIP_SECONDS.get(items, 0):>5}s {n:>8}{cells}   {spare:.3g}x")
    print("\nstrongest non-member alignments (fmp, clip items, file, item, catalogue track):")
    for s in sorted(strongest)[:8]:
        print(f"  {s[0]:.3g}  {s[1]:>3}  {s[2]} @{s[3]} -> {s[4]}")
    if left_out:
        print(f"\nleft out (--shared-prefix {' '.join(shared_prefixes)}): "
              f"{sum(left_out.values())} queries of {len(left_out)} track pairs; pairs with "
              f"fmp <= {LEVELS[-1]:g}: " +
              ("; ".join(" & ".join(p) for p in sorted(shared_pairs)) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
