#!/usr/bin/env python3
"""Derives src/talos/schemas/nodoc.json: the v1alpha1 fields Talos decodes
but leaves out of its published JSON schema (`docgen:nodoc`).

Inputs (facts, not code, are taken from them):
  $1  siderolabs/talos pkg/machinery/config/types/v1alpha1/v1alpha1_types.go
      (the newest contract's; field names, declaration order, `docgen:nodoc`
      and `Deprecated:` comments)
  $2… the release schemas the embedded ones come from, newest first
      (src/talos/schemas/*.json): definitions of the hidden fields are taken
      from the newest schema that still documented them.
  --since REL=types.go  (repeatable) older releases' types, to find the first
      contract that marks each field deprecated.

Fields no published schema ever documented get the hand-written
definitions in HAND below (from the Go types they decode into).
"""
import json
import re
import sys

# Go types no published schema documented, written from the Go types
# (v1alpha1_types.go): MachineDisk, DiskPartition (size: DiskSize, which
# unmarshals a string or a number via humanize.ParseBytes),
# InstallExtensionConfig.
HAND_DEFS = {
    "v1alpha1.MachineDisk": {
        "properties": {
            "device": {"type": "string"},
            "partitions": {"items": {"$ref": "#/$defs/v1alpha1.DiskPartition"}, "type": "array"},
        },
        "additionalProperties": False,
        "type": "object",
    },
    "v1alpha1.DiskPartition": {
        "properties": {"size": {"type": ["integer", "string"]}, "mountpoint": {"type": "string"}},
        "additionalProperties": False,
        "type": "object",
    },
    "v1alpha1.InstallExtensionConfig": {
        "properties": {"image": {"type": "string"}},
        "additionalProperties": False,
        "type": "object",
    },
}
# Hidden fields no published schema documented: (struct, yaml key) -> schema.
HAND_FIELDS = {
    ("Config", "persist"): {"type": "boolean"},
    ("MachineConfig", "disks"): {"items": {"$ref": "#/$defs/v1alpha1.MachineDisk"}, "type": "array"},
    ("ClusterConfig", "allowSchedulingOnMasters"): {"type": "boolean"},
    ("InstallConfig", "extensions"): {"items": {"$ref": "#/$defs/v1alpha1.InstallExtensionConfig"}, "type": "array"},
    ("InstallConfig", "bootloader"): {"type": "boolean"},
    ("EtcdConfig", "subnet"): {"type": "string"},
    ("Device", "cidr"): {"type": "string"},
    ("Vlan", "cidr"): {"type": "string"},
}
# Warnings Talos's own Validate prints (v1alpha1_validation.go), used
# instead of the `Deprecated:` comment; None: no warning for the field
# itself (its own fields carry them).
TALOS_WARNINGS = {
    ("MachineConfig", "files"): ".machine.files is deprecated; use dedicated configuration documents instead "
    "(EtcFileConfig, CRICustomizationConfig)",
    ("MachineConfig", "baseRuntimeSpecOverrides"): ".machine.baseRuntimeSpecOverrides is deprecated; use a "
    "CRIBaseRuntimeSpecConfig document instead",
    ("InstallConfig", "extensions"): ".machine.install.extensions is deprecated, please see "
    "https://docs.siderolabs.com/talos/latest/platform-specific-installations/boot-assets",
    ("Device", "cidr"): "machine.network.interface.cidr is deprecated, please use machine.network.interface.addresses",
}
# Fields that get no warning of their own: their own fields carry one each
# (`.machine.network`: "All fields within NetworkConfig are deprecated").
# `persist`: Talos's generator writes `persist: true` itself and Validate
# only refuses `false`.
DESCEND = {("MachineConfig", "network"), ("Config", "persist")}


def parse(path):
    out, struct, comment = {}, None, []
    for line in open(path):
        m = re.match(r"^type (\w+) struct", line)
        if m:
            struct, comment = m.group(1), []
            out[struct] = []
            continue
        if struct and line.startswith("}"):
            struct = None
            continue
        s = line.strip()
        if s.startswith("//"):
            comment.append(s[2:].strip())
            continue
        if struct and s:
            m = re.search(r'yaml:"([^"]*)"', s)
            if m and m.group(1).split(",")[0]:
                text = " ".join(comment)
                dep = re.search(r"Deprecated: (.*)", text)
                out[struct].append(
                    {"key": m.group(1).split(",")[0], "nodoc": "docgen:nodoc" in text, "deprecated": dep.group(1) if dep else None}
                )
        comment = []
    return out


def main():
    args = sys.argv[1:]
    since = []
    while "--since" in args:
        i = args.index("--since")
        rel, path = args[i + 1].split("=", 1)
        since.append((rel, parse(path)))
        del args[i : i + 2]
    types = parse(args[0])
    schemas = [json.load(open(p))["$defs"] for p in args[1:]]

    def find_def(name):
        if name in HAND_DEFS:
            return HAND_DEFS[name]
        return next((s[name] for s in schemas if name in s), None)

    def find_field(struct, key):
        if (struct, key) in HAND_FIELDS:
            return HAND_FIELDS[(struct, key)]
        name = "v1alpha1." + struct
        return next((s[name]["properties"][key] for s in schemas if key in s.get(name, {}).get("properties", {})), None)

    fields, defs = [], {}

    def pull(node):
        """Copies every definition `node` refers to (transitively)."""
        for ref in re.findall(r'"#/\$defs/([^"]+)"', json.dumps(node)):
            if ref not in defs:
                d = find_def(ref)
                if d is None:
                    sys.exit(f"no definition for {ref}")
                defs[ref] = d
                pull(d)

    order = {}
    for struct, fs in types.items():
        for f in fs:
            if not f["nodoc"]:
                continue
            schema = find_field(struct, f["key"])
            if schema is None:
                sys.exit(f"no schema for {struct}.{f['key']}")
            pull(schema)
            rel = next((r for r, t in since if any(x["key"] == f["key"] and x["deprecated"] for x in t.get(struct, []))), None)
            entry = {"def": "v1alpha1." + struct, "key": f["key"], "schema": schema}
            if (struct, f["key"]) in DESCEND:
                pass
            elif (struct, f["key"]) in TALOS_WARNINGS:
                entry.update(warning=TALOS_WARNINGS[(struct, f["key"])], since=rel or since[0][0])
            elif f["deprecated"]:
                entry.update(deprecated=f["deprecated"], since=rel)
            fields.append(entry)
            order["v1alpha1." + struct] = [x["key"] for x in fs]
    # Definitions copied from older schemas must match the Go struct's fields.
    for name, d in defs.items():
        struct = name.removeprefix("v1alpha1.")
        if name.startswith("v1alpha1.") and struct in types:
            want = {x["key"] for x in types[struct]}
            got = set(d.get("properties", {}))
            extra = {f["key"] for f in fields if f["def"] == name}
            if got | extra != want:
                print(f"warning: {name}: schema {sorted(got - want)} go {sorted(want - got - extra)}", file=sys.stderr)
    out = {"order": order, "fields": fields, "$defs": dict(sorted(defs.items()))}
    print(json.dumps(out, separators=(",", ":")))


main()
