#!/usr/bin/env python3
"""Peer converters used by scripts/bench: FHIR NDJSON -> zstd Parquet.

Usage (run with the .venv interpreter; scripts/bench does this):

    bench_peers.py pyarrow  IN_DIR OUT_DIR
    bench_peers.py duckdb   IN_DIR OUT_DIR [--mode per-file|per-type]
    bench_peers.py count    DIR            # rows/bytes of every *.parquet under DIR
    bench_peers.py versions

The converters print exactly one JSON line on stdout:
    {"tool", "mode", "version", "files", "files_ok", "rows", "failures": [{"file", "error"}], "seconds"}
and exit 0 if at least one input file was converted, 1 if none was (a complete failure).

Input files are `IN_DIR/*.ndjson` (not recursive); the resource type is the file name up to
its first dot (`Observation.ndjson`, `Observation.000.ndjson`, `Observation.r003.ndjson`).
Output: one dataset (folder) per resource type, `OUT_DIR/<Type>/...parquet`.
Every tool is used with its defaults except the zstd compression.
"""

import json
import os
import sys
import time

MAX_ERROR_CHARS = 400


def input_files(in_dir):
    """Return {resource_type: [paths]} for IN_DIR/*.ndjson, sorted."""
    groups = {}
    for name in sorted(os.listdir(in_dir)):
        path = os.path.join(in_dir, name)
        if name.endswith(".ndjson") and os.path.isfile(path):
            groups.setdefault(name.split(".", 1)[0], []).append(path)
    return groups


def short_error(exc):
    text = f"{type(exc).__name__}: {exc}".strip()
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def out_path(out_dir, rtype, src):
    folder = os.path.join(out_dir, rtype)
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, os.path.basename(src)[: -len(".ndjson")] + ".parquet")


def remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass


def run_pyarrow(in_dir, out_dir):
    import pyarrow
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    res = {"tool": "pyarrow", "mode": "per-file", "version": pyarrow.__version__}
    t0 = time.perf_counter()
    files = ok = rows = 0
    failures = []
    for rtype, paths in input_files(in_dir).items():
        for src in paths:
            files += 1
            dst = out_path(out_dir, rtype, src)
            try:
                table = pj.read_json(src)  # defaults: threads on, schema inferred
                pq.write_table(table, dst, compression="zstd")
                rows += table.num_rows
                ok += 1
                del table
            except Exception as exc:  # noqa: BLE001 - every failure is reported, run continues
                remove_quietly(dst)
                failures.append({"file": os.path.basename(src), "error": short_error(exc)})
    res.update(files=files, files_ok=ok, rows=rows, failures=failures,
               seconds=round(time.perf_counter() - t0, 4))
    return res


def sql_str(s):
    return "'" + s.replace("'", "''") + "'"


def run_duckdb(in_dir, out_dir, mode):
    import duckdb

    res = {"tool": "duckdb", "mode": mode, "version": duckdb.__version__}
    t0 = time.perf_counter()
    con = duckdb.connect()  # in-memory, default threads / memory limit
    files = ok = rows = 0
    failures = []

    def copy(sources, dst):
        src_sql = sql_str(sources[0]) if len(sources) == 1 else \
            "[" + ", ".join(sql_str(s) for s in sources) + "]"
        cur = con.execute(
            f"COPY (SELECT * FROM read_ndjson_auto({src_sql})) TO {sql_str(dst)} "
            "(FORMAT parquet, COMPRESSION zstd)")
        got = cur.fetchone()
        return int(got[0]) if got and got[0] is not None else 0

    for rtype, paths in input_files(in_dir).items():
        if mode == "per-file":
            for src in paths:
                files += 1
                dst = out_path(out_dir, rtype, src)
                try:
                    rows += copy([src], dst)
                    ok += 1
                except Exception as exc:  # noqa: BLE001
                    remove_quietly(dst)
                    failures.append({"file": os.path.basename(src), "error": short_error(exc)})
        else:  # per-type: one query over all files of the type (explicit list = exact glob)
            files += len(paths)
            folder = os.path.join(out_dir, rtype)
            os.makedirs(folder, exist_ok=True)
            dst = os.path.join(folder, f"{rtype}.parquet")
            try:
                rows += copy(paths, dst)
                ok += len(paths)
            except Exception as exc:  # noqa: BLE001
                remove_quietly(dst)
                names = [os.path.basename(p) for p in paths]
                label = names[0] if len(names) == 1 else f"{rtype} ({len(names)} files)"
                failures.append({"file": label, "files": len(names), "error": short_error(exc)})
    con.close()
    res.update(files=files, files_ok=ok, rows=rows, failures=failures,
               seconds=round(time.perf_counter() - t0, 4))
    return res


def count_parquet(root):
    import pyarrow.parquet as pq

    files = rows = size = 0
    errors = []
    for dirpath, _dirs, names in os.walk(root):
        for name in sorted(names):
            if not name.endswith(".parquet"):
                continue
            path = os.path.join(dirpath, name)
            files += 1
            size += os.path.getsize(path)
            try:
                rows += pq.read_metadata(path).num_rows
            except Exception as exc:  # noqa: BLE001
                errors.append({"file": os.path.relpath(path, root), "error": short_error(exc)})
    return {"parquet_files": files, "rows": rows, "bytes": size, "errors": errors}


def versions():
    import platform

    out = {"python": platform.python_version()}
    for mod in ("pyarrow", "duckdb"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception as exc:  # noqa: BLE001
            out[mod] = f"unavailable ({short_error(exc)})"
    return out


def usage():
    sys.stderr.write(__doc__)
    sys.exit(2)


def main(argv):
    if not argv:
        usage()
    cmd = argv[0]
    if cmd == "versions":
        print(json.dumps(versions()))
        return 0
    if cmd == "count" and len(argv) == 2:
        print(json.dumps(count_parquet(argv[1])))
        return 0
    if cmd in ("pyarrow", "duckdb") and len(argv) >= 3:
        in_dir, out_dir = argv[1], argv[2]
        mode = "per-file"
        rest = argv[3:]
        if cmd == "duckdb" and rest[:1] == ["--mode"] and len(rest) == 2 \
                and rest[1] in ("per-file", "per-type"):
            mode = rest[1]
        elif rest:
            usage()
        if not os.path.isdir(in_dir):
            sys.stderr.write(f"bench_peers: input folder not found: {in_dir}\n")
            return 2
        os.makedirs(out_dir, exist_ok=True)
        res = run_pyarrow(in_dir, out_dir) if cmd == "pyarrow" else run_duckdb(in_dir, out_dir, mode)
        print(json.dumps(res), flush=True)
        return 0 if res["files_ok"] > 0 else 1
    usage()
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
