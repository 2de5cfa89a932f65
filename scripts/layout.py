"""The README's "Layout" section, generated from the tree: one row per crate (its folder, its
Cargo description, its modules) and one per other top-level folder (what is in it).

    python3 scripts/layout.py          check: fails (exit 1) if README.md's section is stale
    python3 scripts/layout.py --write  rewrite the section between the layout markers

The crate descriptions live in each Cargo.toml and the module docs in each `lib.rs`; this only
lists what exists, so the README can never name a file that is gone or miss a new one.
"""

import os
import sys
import tomllib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BEGIN, END = "<!-- layout:begin -->", "<!-- layout:end -->"
# Top-level folders that are not crates, with what they hold.
FOLDERS = [
    ("tests/", "the facade's tests: one in-process binary, real child processes, macro compile errors"),
    ("examples/", "processors built and run by the tests and the end-to-end suite"),
    ("fuzz/", "cargo-fuzz targets (`scripts/fuzz.sh`)"),
    ("scripts/", "test, CI, benchmark, soak, fuzz, mutation, audit and end-to-end drivers"),
    ("docs/", "reference documents the code cites, the deployment guide and the migration notes"),
    ("deploy/", "deployment files of docs/deploy.md (systemd, ECS, Kubernetes), each checked by kcl-cli/tests/deploy_files.rs"),
]


def entries(folder, suffixes=(".rs",)):
    """Names in `folder`: files with one of `suffixes` (without it for .rs) and sub-folders
    (with a trailing /), sorted, hidden ones and build output left out."""
    path = os.path.join(ROOT, folder)
    names = []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if name.startswith(".") or name in ("target", "artifacts", "corpus", "coverage"):
            continue
        if os.path.isdir(full):
            names.append(name + "/")
        elif name.endswith(suffixes):
            names.append(name[:-3] if name.endswith(".rs") else name)
    return names


def crates():
    root = tomllib.load(open(os.path.join(ROOT, "Cargo.toml"), "rb"))
    rows = [("./", root["package"]["name"], root["package"]["description"], "src")]
    for member in root["workspace"]["members"]:
        manifest = tomllib.load(open(os.path.join(ROOT, member, "Cargo.toml"), "rb"))
        package = manifest["package"]
        rows.append((member + "/", package["name"], package.get("description", ""), os.path.join(member, "src")))
    return rows


def section():
    lines = [
        BEGIN,
        "| folder | crate | what it is | modules (`src/`) |",
        "|---|---|---|---|",
    ]
    for folder, name, description, src in crates():
        modules = ", ".join(f"`{m}`" for m in entries(src))
        lines.append(f"| `{folder}` | `{name}` | {description} | {modules} |")
    for folder, what in FOLDERS:
        suffixes = (".rs", ".md", ".sh", ".py", ".toml", ".js", ".txt", ".in")
        inside = ", ".join(f"`{n}`" for n in entries(folder, suffixes))
        lines.append(f"| `{folder}` | | {what} | {inside} |")
    lines.append(END)
    return "\n".join(lines)


def main(argv):
    readme_path = os.path.join(ROOT, "README.md")
    readme = open(readme_path).read()
    if BEGIN not in readme or END not in readme:
        print(f"README.md has no {BEGIN} … {END} block", file=sys.stderr)
        return 1
    start, stop = readme.index(BEGIN), readme.index(END) + len(END)
    fresh = section()
    if readme[start:stop] == fresh:
        return 0
    if argv[:1] == ["--write"]:
        open(readme_path, "w").write(readme[:start] + fresh + readme[stop:])
        print("README.md: layout section rewritten")
        return 0
    print(
        "README.md's layout section is stale (a crate, module or folder was added, moved or removed):"
        " run `python3 scripts/layout.py --write` and commit the result",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
