"""The KCL lease table in the DynamoDB emulator (table name = applicationName).

A lease row per shard: `leaseKey` (the shard id), `leaseOwner` (a workerId), `checkpoint` (a
decimal sequence number or a sentinel such as TRIM_HORIZON or SHARD_END),
`checkpointSubSequenceNumber`, `leaseCounter`, `parentShardId`, `childShardIds`, ...
"""

from emulators import client


def _plain(value):
    kind, inner = next(iter(value.items()))
    if kind == "N":
        return int(inner) if inner.lstrip("-").isdigit() else float(inner)
    if kind in ("SS", "NS"):
        return sorted(inner)
    return inner


class Leases:
    def __init__(self, settings, table):
        self.dynamodb = client(settings, "dynamodb")
        self.table = table

    def rows(self):
        """{leaseKey: {attribute: plain value}}; {} while the table does not exist."""
        items, start = [], None
        try:
            while True:
                page = (
                    self.dynamodb.scan(TableName=self.table, ExclusiveStartKey=start)
                    if start
                    else self.dynamodb.scan(TableName=self.table)
                )
                items += page["Items"]
                start = page.get("LastEvaluatedKey")
                if not start:
                    break
        except self.dynamodb.exceptions.ResourceNotFoundException:
            return {}
        return {item["leaseKey"]["S"]: {k: _plain(v) for k, v in item.items()} for item in items}

    def checkpoints(self):
        """{shard: (checkpoint text, sub-sequence number)}."""
        return {k: (r.get("checkpoint"), r.get("checkpointSubSequenceNumber", 0)) for k, r in self.rows().items()}

    def owners(self):
        """{shard: owner or None}."""
        return {k: r.get("leaseOwner") for k, r in self.rows().items()}

    def describe(self):
        """One line per lease, for logs and the demo."""
        lines = []
        for key, row in sorted(self.rows().items()):
            lines.append(
                f"{key}: checkpoint={row.get('checkpoint')} sub={row.get('checkpointSubSequenceNumber')} "
                f"owner={row.get('leaseOwner')} counter={row.get('leaseCounter')}"
                + (f" parents={row.get('parentShardId')}" if row.get("parentShardId") else "")
                + (f" children={row.get('childShardIds')}" if row.get("childShardIds") else "")
            )
        return lines
