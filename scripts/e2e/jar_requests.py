"""Prints, as JSON, which AWS requests the MultiLangDaemon's jars can send and which classes build them.

Usage: python3 jar_requests.py JAR_FOLDER

For every class outside the AWS SDK itself (KCL, the multilang daemon, the DynamoDB lock client,
...), the class file's constant pool names each request class it uses, e.g.
software/amazon/awssdk/services/dynamodb/model/UpdateTableRequest. The output maps
"dynamodb:UpdateTable" to the sorted list of those classes ("software/amazon/kinesis/.../X").
The e2e scenario iam_policy_covers_what_both_engines_call compares it with `kcl iam-policy
--list-calls`.
"""

import json
import re
import sys
import zipfile
from pathlib import Path

REQUEST = re.compile(rb"software/amazon/awssdk/services/(\w+)/model/(\w+)Request(?![A-Za-z0-9_$])")


def main(folder: str) -> None:
    found: dict[str, set[str]] = {}
    for jar in sorted(Path(folder).glob("*.jar")):
        with zipfile.ZipFile(jar) as archive:
            for name in archive.namelist():
                if not name.endswith(".class") or name.startswith("software/amazon/awssdk/"):
                    continue
                data = archive.read(name)
                for match in REQUEST.finditer(data):
                    action = f"{match.group(1).decode()}:{match.group(2).decode()}"
                    found.setdefault(action, set()).add(name[: -len(".class")])
    json.dump({action: sorted(classes) for action, classes in sorted(found.items())}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main(sys.argv[1])
