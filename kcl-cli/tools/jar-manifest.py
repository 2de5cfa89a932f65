#!/usr/bin/env python3
"""Print a pinned jar manifest (kcl-cli/src/jars/kcl-<version>.txt) for a folder of daemon jars.

Usage: python3 kcl-cli/tools/jar-manifest.py JARS_DIR > kcl-cli/src/jars/kcl-X.Y.Z.txt

Each jar's Maven coordinates come from its META-INF/maven/<group>/<artifact>/pom.properties (the
entry whose artifact-version matches the file name); the few jars that ship none are named in
KNOWN_GROUPS. The SHA-256 is computed from the file itself.
"""
import hashlib
import os
import re
import sys
import zipfile

# Jars of the KCL 3.x set whose archives carry no pom.properties: artifactId -> groupId.
KNOWN_GROUPS = {
    "checker-qual": "org.checkerframework",
    "ion-java": "com.amazon.ion",
    "jcommander": "com.beust",
    "protobuf-java": "com.google.protobuf",
    "reactive-streams": "org.reactivestreams",
    "rxjava": "io.reactivex.rxjava3",
    "third-party-jackson-core": "software.amazon.awssdk",
    "third-party-jackson-dataformat-cbor": "software.amazon.awssdk",
}


def coordinates(path):
    name = os.path.basename(path)[: -len(".jar")]
    with zipfile.ZipFile(path) as jar:
        for entry in jar.namelist():
            if not re.fullmatch(r"META-INF/maven/[^/]+/[^/]+/pom\.properties", entry):
                continue
            props = {}
            for line in jar.read(entry).decode("utf-8", "replace").splitlines():
                if "=" in line and not line.startswith("#"):
                    key, value = line.split("=", 1)
                    props[key.strip()] = value.strip()
            if f"{props.get('artifactId')}-{props.get('version')}" == name:
                return props["groupId"], props["artifactId"], props["version"]
    match = re.fullmatch(r"(.+?)-(\d.*)", name)
    if match and match.group(1) in KNOWN_GROUPS:
        return KNOWN_GROUPS[match.group(1)], match.group(1), match.group(2)
    sys.exit(f"error: cannot tell the Maven coordinates of {path}; add it to KNOWN_GROUPS")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    folder = sys.argv[1]
    rows = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".jar"):
            path = os.path.join(folder, name)
            group, artifact, version = coordinates(path)
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            rows.append(f"{group}:{artifact}:{version} {digest}")
    for row in sorted(rows):
        print(row)


if __name__ == "__main__":
    main()
