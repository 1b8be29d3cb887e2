#!/usr/bin/env python3
"""Accuracy benchmark: hit rate and false positives of trainspotter on real music.

Splits the real-music fixture (tools/fetch-test-music.sh) into members and non-members with a
seeded shuffle, ingests the members through the CLI, cuts clips at random offsets from both,
distorts them with ffmpeg (codecs, resampling, gain, pink noise, band limiting, speed change),
adds synthetic non-members (silence, tones, noise, espeak-ng speech), queries every clip through
`trainspotter query --json` and prints the hit-rate table (clip length x distortion) and the
false-positive count.

  tools/eval-accuracy.sh                      # defaults: 3 offsets per track and cell
  tools/eval_accuracy.py --offsets 5 --seed 7 --trainspotter build/bin/trainspotter
"""
import argparse
import concurrent.futures as cf
import hashlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time

# name -> (ffmpeg audio filter or None, output extension, ffmpeg codec args)
DISTORTIONS = {
    "clean": (None, "wav", []),
    "mp3_64k": (None, "mp3", ["-c:a", "libmp3lame", "-b:a", "64k"]),
    "aac_96k": (None, "m4a", ["-c:a", "aac", "-b:a", "96k"]),
    "opus_32k": (None, "opus", ["-c:a", "libopus", "-b:a", "32k"]),
    "resample_22k": ("aresample=22050", "wav", []),
    "gain_+6dB": ("volume=6dB", "wav", []),
    "gain_-6dB": ("volume=-6dB", "wav", []),
    "pink_10dB": ("NOISE:10", "wav", []),
    "pink_0dB": ("NOISE:0", "wav", []),
    "band_300_3400": ("highpass=f=300:poles=2,highpass=f=300:poles=2,"
                      "lowpass=f=3400:poles=2,lowpass=f=3400:poles=2", "wav", []),
    "speed_+2%": ("aresample=44100,asetrate=44100*1.02,aresample=44100", "wav", []),
    "speed_-2%": ("aresample=44100,asetrate=44100*0.98,aresample=44100", "wav", []),
}
# Which distortions each clip length is measured with (the targets of issue 3).
PLAN = {
    5: ["clean", "mp3_64k", "aac_96k", "opus_32k", "resample_22k", "gain_+6dB", "gain_-6dB",
        "pink_10dB"],
    10: list(DISTORTIONS),
    30: ["clean", "mp3_64k", "aac_96k", "opus_32k", "resample_22k", "gain_+6dB", "gain_-6dB",
         "pink_10dB"],
}
NONMEMBER_DISTORTIONS = ["clean", "mp3_64k", "pink_10dB"]


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def duration_of(path):
    out = run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
               path]).stdout.strip()
    try:
        return float(out)
    except ValueError:
        return 0.0


def mean_volume_db(path):
    err = run(["ffmpeg", "-hide_banner", "-nostats", "-i", path, "-af", "volumedetect", "-f",
               "null", "-"]).stderr
    for line in err.splitlines():
        if "mean_volume:" in line:
            return float(line.split("mean_volume:")[1].split()[0])
    return -91.0


def make_clip(src, start, length, distortion, out_path, seed):
    """Cuts [start, start+length) of src, applies the distortion, writes out_path."""
    filt, _ext, codec = DISTORTIONS[distortion]
    # The cut goes to PCM first: re-muxing a cut of an Ogg file straight into another Ogg
    # stream (Opus) can keep the source's granule positions and drop the clip's last second.
    cut = out_path + ".src.wav"
    r = run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", f"{start:.3f}", "-t", f"{length}",
             "-i", src, "-ac", "2", "-ar", "44100", cut])
    if r.returncode != 0:
        return r.stderr
    try:
        if filt and filt.startswith("NOISE:"):
            snr = float(filt.split(":")[1])
            level = mean_volume_db(cut)
            # Pink noise whose mean volume sits `snr` dB below the clip's.
            noise = out_path + ".noise.wav"
            run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                 f"anoisesrc=color=pink:amplitude=0.5:seed={seed}:duration={length}", "-ac", "2",
                 "-ar", "44100", noise])
            nlevel = mean_volume_db(noise)
            gain = level - snr - nlevel
            r = run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", cut, "-i", noise,
                     "-filter_complex",
                     f"[1:a]volume={gain:.2f}dB[n];[0:a][n]amix=inputs=2:duration=first:"
                     f"normalize=0", out_path])
            if os.path.exists(noise):
                os.remove(noise)
        else:
            cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", cut]
            if filt:
                cmd += ["-af", filt]
            r = run(cmd + codec + [out_path])
    finally:
        if os.path.exists(cut):
            os.remove(cut)
    return None if r.returncode == 0 else r.stderr


def fixture_tracks(music, prog):
    """The real-music fixture's audio files, sorted; exits naming the folder if there are few."""
    names = os.listdir(music) if os.path.isdir(music) else []
    tracks = sorted(os.path.join(music, f) for f in names
                    if f.lower().endswith((".ogg", ".mp3", ".flac", ".wav", ".opus", ".m4a")))
    if len(tracks) < 4:
        sys.exit(f"{prog}: need real music in {music} (run tools/fetch-test-music.sh, or "
                 "tools/fetch-wide-music.sh or tools/fetch-third-music.sh for the second or "
                 "third corpus)")
    return tracks


def synth_nonmembers(work, seconds=None):
    """Silence, tones, noise and speech: audio with little or no musical information. Each
    generated signal lasts `seconds` if given (the speech then is one long file)."""
    specs = []
    for i, (src, dur) in enumerate([
        ("anullsrc=r=44100:cl=stereo", 10), ("anullsrc=r=44100:cl=mono", 5),
        ("sine=frequency=440:sample_rate=44100", 10), ("sine=frequency=1000:sample_rate=44100", 5),
        ("sine=frequency=110:sample_rate=44100", 30),
        ("anoisesrc=color=white:amplitude=0.3:seed=3", 10),
        ("anoisesrc=color=pink:amplitude=0.3:seed=4", 10),
        ("anoisesrc=color=brown:amplitude=0.3:seed=5", 30),
        ("aevalsrc='0.3*sin(2*PI*(200+100*t)*t)':s=44100", 10),
    ]):
        dur = seconds or dur
        out = os.path.join(work, f"synth_{i:02d}.wav")
        run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
             f"{src}:duration={dur}" if "aevalsrc" not in src else src, "-t", str(dur), out])
        specs.append(out)
    if shutil.which("espeak-ng"):
        texts = ["The quick brown fox jumps over the lazy dog while the band plays on.",
                 "Is this audio in a known training dataset, and where exactly does it occur?",
                 "One two three four five six seven eight nine ten, and again from the start."]
        if seconds:
            texts = [" ".join(texts * 3)]
        for i, t in enumerate(texts):
            out = os.path.join(work, f"speech_{i:02d}.wav")
            run(["espeak-ng", "-w", out, t])
            specs.append(out)
    return specs


def shared_audio_groups(args, tracks):
    """Union-find over tracks whose whole-track queries match each other."""
    allcat = os.path.join(args.work, "all-catalog")
    lib = os.path.join(args.work, "all")
    os.makedirs(lib)
    for t in tracks:
        os.symlink(os.path.abspath(t), os.path.join(lib, os.path.basename(t)))
    r = run([args.trainspotter, "ingest", "--catalog", allcat, "--dataset", "all", lib])
    if r.returncode != 0:
        sys.exit(f"eval: ingest of all tracks failed:\n{r.stderr}")
    # Every listed match counts: a track built from the same stems as several others (a remix
    # album) matches all of them.
    r = run([args.trainspotter, "query", "--catalog", allcat, "--json", "--max-matches", "100"] +
            [os.path.join(lib, os.path.basename(t)) for t in tracks])
    parent = {os.path.basename(t): os.path.basename(t) for t in tracks}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    for line in r.stdout.splitlines():
        obj = json.loads(line)
        me = os.path.basename(obj["file"])
        for m in obj.get("matches") or []:
            if m.get("track_id") in parent and m["track_id"] != me and \
                    m.get("false_match_probability", 1) < 1e-6:
                parent[find(me)] = find(m["track_id"])
    by_root = {}
    for t in tracks:
        by_root.setdefault(find(os.path.basename(t)), []).append(t)
    shared = [g for g in by_root.values() if len(g) > 1]
    if shared:
        print("tracks sharing audio (kept on one side of the split): " +
              "; ".join(", ".join(os.path.basename(x) for x in g) for g in shared))
    return sorted(by_root.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--trainspotter", default="build/bin/trainspotter")
    ap.add_argument("--music", default=os.environ.get(
        "TRAINSPOTTER_MUSIC_DIR", os.path.expanduser("~/.cache/trainspotter/music")))
    ap.add_argument("--work", default="build/eval")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--offsets", type=int, default=3, help="clips per track and table cell")
    ap.add_argument("--member-fraction", type=float, default=0.65)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--json-out", help="also write the summary here")
    ap.add_argument("--near-misses", action="store_true",
                    help="ask for near misses too (for calibration: WORK/results.jsonl then holds "
                         "the best non-member alignments' false-match probabilities)")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    tracks = fixture_tracks(args.music, "eval")
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)

    # Tracks that share audio (a reprise, the same intro) cannot be split into member and
    # non-member: a "non-member" clip of shared audio is rightly found. Group them first, by
    # asking trainspotter itself with whole tracks against a catalogue of all of them.
    groups = shared_audio_groups(args, tracks)
    # The same audio in two member tracks: either one is a right answer to a clip of it.
    same_audio = {os.path.basename(t): {os.path.basename(x) for x in g} for g in groups for t in g}
    rng.shuffle(groups)
    members, nonmembers = [], []
    for g in groups:
        (members if len(members) < args.member_fraction * len(tracks) else nonmembers).extend(g)
    if not nonmembers:
        sys.exit("eval: every track ended up a member; lower --member-fraction")
    lib = os.path.join(args.work, "members")
    os.makedirs(lib)
    for t in members:
        os.symlink(os.path.abspath(t), os.path.join(lib, os.path.basename(t)))
    catalog = os.path.join(args.work, "catalog")
    t0 = time.time()
    r = run([args.trainspotter, "ingest", "--catalog", catalog, "--dataset", "eval", lib])
    if r.returncode != 0:
        sys.exit(f"eval: ingest failed:\n{r.stderr}")
    ingest_s = time.time() - t0

    clips = []  # (path, kind, length, distortion, track basename or None, start)
    clipdir = os.path.join(args.work, "clips")
    os.makedirs(clipdir)
    jobs = []
    for is_member, group in ((True, members), (False, nonmembers)):
        for t in group:
            dur = duration_of(t)
            for length, dists in PLAN.items():
                if dur < length + 0.5:
                    continue
                for d in (dists if is_member else NONMEMBER_DISTORTIONS):
                    for k in range(args.offsets):
                        start = rng.uniform(0, dur - length - 0.01)
                        name = hashlib.sha1(f"{t}|{length}|{d}|{k}".encode()).hexdigest()[:12]
                        out = os.path.join(clipdir, f"{name}.{DISTORTIONS[d][1]}")
                        jobs.append((t, start, length, d, out, rng.randrange(1 << 30)))
                        clips.append((out, "member" if is_member else "nonmember", length, d,
                                      os.path.basename(t), start))
    with cf.ThreadPoolExecutor(args.jobs) as ex:
        errs = list(ex.map(lambda j: make_clip(*j), jobs))
    bad = [j for j, e in zip(jobs, errs) if e]
    for j in bad[:5]:
        print(f"eval: clip failed: {j}", file=sys.stderr)
    for s in synth_nonmembers(clipdir):
        clips.append((s, "synthetic", round(duration_of(s)), "synthetic", None, 0.0))

    paths = [c[0] for c in clips if os.path.exists(c[0])]
    t0 = time.time()
    results = {}
    batch = 200
    def query(chunk):
        r = run([args.trainspotter, "query", "--catalog", catalog, "--json"] +
                (["--near-misses"] if args.near_misses else []) + chunk)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    with cf.ThreadPoolExecutor(max(1, args.jobs)) as ex:
        for out in ex.map(query, [paths[i:i + batch] for i in range(0, len(paths), batch)]):
            for obj in out:
                results[obj["file"]] = obj
    query_s = time.time() - t0

    table = {}
    fps = []
    offs_err = []
    for path, kind, length, d, track, start in clips:
        res = results.get(path)
        if res is None:
            continue
        if kind == "member":
            cell = table.setdefault((length, d), [0, 0])
            cell[1] += 1
            top = next((m for m in res.get("matches") or [] if m.get("member", True)), None)
            ok = bool(res.get("member")) and top and top.get("track_id") in same_audio[track]
            if ok:
                cell[0] += 1
            if ok and top.get("track_id") == track:
                offs_err.append(abs((top["ref_start"] - top["query_start"]) - start)
                                if d not in ("speed_+2%", "speed_-2%") else 0.0)
        elif res.get("member"):
            fps.append((path, kind, d, res["matches"][0] if res["matches"] else None))
    with open(os.path.join(args.work, "results.jsonl"), "w") as f:
        for path, kind, length, d, track, start in clips:
            f.write(json.dumps({"clip": path, "kind": kind, "length": length, "distortion": d,
                                "track": track, "start": start,
                                "answer": results.get(path)}) + "\n")
    n_non = sum(1 for c in clips if c[1] != "member" and c[0] in results)

    print(f"members: {len(members)} tracks, non-members: {len(nonmembers)} tracks "
          f"(seed {args.seed}); ingest {ingest_s:.1f} s; {len(results)} queries in "
          f"{query_s:.1f} s")
    dists = list(DISTORTIONS)
    lengths = sorted(PLAN)
    print("\nhit rate (member=true and the top match is the right track, or a member track that"
          " shares its audio)")
    print(f"{'distortion':<15}" + "".join(f"{str(l) + ' s':>16}" for l in lengths))
    for d in dists:
        row = f"{d:<15}"
        for l in lengths:
            c = table.get((l, d))
            row += f"{'-':>16}" if not c else f"{100.0 * c[0] / c[1]:>8.1f}% {c[0]:>3}/{c[1]:<3}"
        print(row)
    if offs_err:
        offs_err.sort()
        print(f"\noffset error of hits: median {offs_err[len(offs_err) // 2]:.3f} s, "
              f"max {offs_err[-1]:.3f} s")
    print(f"\nfalse positives: {len(fps)} of {n_non} non-member queries")
    for p, kind, d, m in fps:
        # The bit error rate tells a look-alike (~0.2 or more for a clean clip) from a copy.
        if m is None:
            print(f"  FP {kind} {d} {p} (member, no match listed)")
            continue
        print(f"  FP {kind} {d} {p} -> {m['track_id']} fmp={m['false_match_probability']:.3g} "
              f"ber={m.get('bit_error_rate')}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"table": {f"{l}|{d}": v for (l, d), v in table.items()},
                       "false_positives": len(fps), "nonmember_queries": n_non}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
