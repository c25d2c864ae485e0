"""The report as CASE/UCO JSON-LD (caseontology.org), the format forensic tools exchange.

What is written: the investigation (case number, examiner, organisation), the tool,
the enrolled devices, each evidence file with its SHA-256 (uco-observable File with
File and ContentData facets), one InvestigativeAction per run, and for every PRNU
decision an Assertion that states it (file, device, PCE, p_fa, decision) with its
objects. Identifiers are UUIDs derived from the case and what they name (uuid5), so
the same case gives the same graph. Validated with case-utils' `case_validate` in the tests.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from typing import Any

CONTEXT = {
    "kb": "http://example.org/kb/",
    "case-investigation": "https://ontology.caseontology.org/case/investigation/",
    "uco-action": "https://ontology.unifiedcyberontology.org/uco/action/",
    "uco-core": "https://ontology.unifiedcyberontology.org/uco/core/",
    "uco-identity": "https://ontology.unifiedcyberontology.org/uco/identity/",
    "uco-observable": "https://ontology.unifiedcyberontology.org/uco/observable/",
    "uco-tool": "https://ontology.unifiedcyberontology.org/uco/tool/",
    "uco-types": "https://ontology.unifiedcyberontology.org/uco/types/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}


class _Ids:
    """Deterministic node identifiers: kb:<kind>-<uuid5 of the case and the key>."""

    def __init__(self, case: str) -> None:
        self.namespace = uuid.uuid5(uuid.NAMESPACE_URL, "sensorprint:" + case)

    def __call__(self, kind: str, key: Any) -> str:
        return f"kb:{kind}-{uuid.uuid5(self.namespace, f'{kind}:{key}')}"


def _ref(node_id: str) -> dict[str, str]:
    return {"@id": node_id}


def _time(value: str | None) -> dict[str, str] | None:
    return {"@type": "xsd:dateTime", "@value": value} if value else None


def _file_node(ids: _Ids, record: Mapping[str, Any]) -> dict[str, Any]:
    """An evidence file: its name, path, size and SHA-256."""
    key = record["id"]
    facet: dict[str, Any] = {
        "@id": ids("file-facet", key),
        "@type": "uco-observable:FileFacet",
        "uco-observable:fileName": os.path.basename(record["path"]) or record["path"],
        "uco-observable:filePath": record["path"],
    }
    if record.get("size_bytes") is not None:
        facet["uco-observable:sizeInBytes"] = {"@type": "xsd:integer", "@value": str(int(record["size_bytes"]))}
    facets = [facet]
    if record.get("sha256"):
        hash_node = {
            "@id": ids("hash", key),
            "@type": "uco-types:Hash",
            "uco-types:hashMethod": "SHA256",
            "uco-types:hashValue": {"@type": "xsd:hexBinary", "@value": record["sha256"]},
        }
        facets.append(
            {
                "@id": ids("content-facet", key),
                "@type": "uco-observable:ContentDataFacet",
                "uco-observable:hash": [hash_node],
            }
        )
    return {"@id": ids("file", key), "@type": "uco-observable:File", "uco-core:hasFacet": facets}


def _device_node(ids: _Ids, device: Mapping[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = {
        "@id": ids("device", device["name"]),
        "@type": "uco-observable:Device",
        "uco-core:name": device["name"],
    }
    if device.get("model"):
        node["uco-core:hasFacet"] = [
            {"@id": ids("device-facet", device["name"]), "@type": "uco-observable:DeviceFacet", "uco-observable:model": device["model"]}
        ]  # fmt: skip
    return node


def _assertions(ids: _Ids, record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One Assertion per PRNU comparison of a file: what was decided, on what evidence."""
    nodes = []
    for device, entry in sorted(record["devices"].items()):
        pce = "n/a" if entry["pce"] is None else f"{entry['pce']:.1f}"
        p_fa = "n/a" if entry["p_fa"] is None else f"{entry['p_fa']:.3g}"
        statement = f"PRNU: {record['path']} against {device}: {entry['decision']} (PCE {pce}, p_fa {p_fa})"
        nodes.append(
            {
                "@id": ids("assertion", f"{record['id']}:{device}"),
                "@type": "uco-core:Assertion",
                "uco-core:statement": [statement],
                "uco-core:object": [_ref(ids("file", record["id"])), _ref(ids("device", device))],
            }
        )
    return nodes


def _actions(ids: _Ids, data: Mapping[str, Any], performer: str | None, tool: str) -> list[dict[str, Any]]:
    nodes = []
    for run in data["runs"]:
        node: dict[str, Any] = {
            "@id": ids("action", run["id"]),
            "@type": "case-investigation:InvestigativeAction",
            "uco-core:name": f"sensorprint {run['command']} (run {run['id']}, {run['status']})",
            "uco-action:instrument": _ref(tool),
        }
        for key, value in (("uco-action:startTime", run["started"]), ("uco-action:endTime", run["finished"])):
            if value:
                node[key] = _time(value)
        if performer:
            node["uco-action:performer"] = _ref(performer)
        nodes.append(node)
    return nodes


def case_uco_graph(data: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-LD document of a report's data (`report_data`)."""
    ids = _Ids(data["case"])
    identity = data.get("identity") or {}
    tool = ids("tool", "sensorprint")
    graph: list[dict[str, Any]] = [
        {
            "@id": tool,
            "@type": "uco-tool:Tool",
            "uco-core:name": "sensorprint",
            "uco-tool:version": data["tool_version"],
        }
    ]
    performer = None
    if identity.get("examiner"):
        performer = ids("person", identity["examiner"])
        graph.append({"@id": performer, "@type": "uco-identity:Person", "uco-core:name": identity["examiner"]})
    if identity.get("organisation"):
        graph.append({"@id": ids("organisation", identity["organisation"]), "@type": "uco-identity:Organization",
                      "uco-core:name": identity["organisation"]})  # fmt: skip
    files = [_file_node(ids, r) for r in data["records"]]
    devices = [_device_node(ids, d) for d in data["devices"]]
    assertions = [a for r in data["records"] for a in _assertions(ids, r)]
    actions = _actions(ids, data, performer, tool)
    investigation = {
        "@id": ids("investigation", data["case"]),
        "@type": "case-investigation:Investigation",
        "uco-core:name": identity.get("case_number") or data["case"],
        "uco-core:description": identity.get("title") or f"sensorprint case {data['case']}",
        "uco-core:object": [_ref(n["@id"]) for n in (*files, *devices, *actions, *assertions)],
    }
    return {"@context": CONTEXT, "@graph": [investigation, *graph, *devices, *files, *actions, *assertions]}


def render_case_uco(data: Mapping[str, Any]) -> str:
    """CASE/UCO JSON-LD text (UTF-8, stable key order)."""
    return json.dumps(case_uco_graph(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
