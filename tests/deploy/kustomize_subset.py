"""The part of kustomize the suite's overlays use, for rendering them in tests without the binary.

kustomize ships as a Go binary, and PyPI has no package that renders a kustomization (the `kustomize`
package there builds manifests in Python instead), so the tests render with this subset:
`resources` (files and folders holding a kustomization.yaml), `namespace`, `images`, `replicas` and
`patches` given as JSON 6902 operations (applied with `jsonpatch`), with kustomize's meaning for
each. Any other field raises, so an overlay cannot use something the tests would silently ignore.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

Resource = dict[str, Any]

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "replicas", "patches"}
# Kinds that live outside any namespace among those the suite uses.
CLUSTER_SCOPED = {"Namespace"}
# Where each kind keeps its pod template (kustomize's images and replicas transformers look there).
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
REPLICATED_KINDS = {"Deployment", "StatefulSet", "ReplicaSet"}


class UnsupportedKustomization(ValueError):
    pass


def load_yaml_documents(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def render(folder: Path) -> list[Resource]:
    """The resources `kustomize build folder` would print (for the supported subset)."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text(encoding="utf-8"))
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise UnsupportedKustomization(f"{folder}: fields {sorted(unknown)} are outside the tested subset")
    resources: list[Resource] = []
    for entry in spec.get("resources", []):
        target = (folder / entry).resolve()
        resources.extend(render(target) if target.is_dir() else load_yaml_documents(target))
    for patch in spec.get("patches", []):
        _apply_patch(folder, resources, patch)
    if "namespace" in spec:
        for res in resources:
            if res["kind"] not in CLUSTER_SCOPED:
                res["metadata"]["namespace"] = spec["namespace"]
    for image in spec.get("images", []):
        _set_image(resources, image)
    for replicas in spec.get("replicas", []):
        matched = [r for r in resources if r["kind"] in REPLICATED_KINDS and r["metadata"]["name"] == replicas["name"]]
        if not matched:
            raise UnsupportedKustomization(f"{folder}: replicas for unknown workload {replicas['name']!r}")
        for res in matched:
            res["spec"]["replicas"] = replicas["count"]
    return resources


def _apply_patch(folder: Path, resources: list[Resource], patch: dict[str, Any]) -> None:
    text = patch["patch"] if "patch" in patch else (folder / patch["path"]).read_text(encoding="utf-8")
    operations = yaml.safe_load(text)
    if not isinstance(operations, list):
        raise UnsupportedKustomization(f"{folder}: only JSON 6902 patches (a list of operations) are supported")
    target = patch.get("target", {})
    matched = [i for i, r in enumerate(resources) if _matches(r, target)]
    if not matched:
        raise UnsupportedKustomization(f"{folder}: patch target {target} matches no resource")
    for i in matched:
        resources[i] = jsonpatch.apply_patch(copy.deepcopy(resources[i]), operations)


def _matches(resource: Resource, target: dict[str, Any]) -> bool:
    group, _, version = resource["apiVersion"].rpartition("/")
    actual = {
        "kind": resource["kind"],
        "name": resource["metadata"]["name"],
        "namespace": resource["metadata"].get("namespace"),
        "group": group,
        "version": version,
    }
    return all(actual.get(key) == value for key, value in target.items())


def _set_image(resources: list[Resource], image: dict[str, str]) -> None:
    for res in resources:
        if res["kind"] not in POD_TEMPLATE_KINDS:
            continue
        pod = res["spec"]["template"]["spec"]
        for container in [*pod.get("containers", []), *pod.get("initContainers", [])]:
            # The name is the reference without its tag or digest (a registry may carry a :port).
            head, _, last = container["image"].split("@")[0].rpartition("/")
            name = f"{head}/{last.split(':')[0]}" if head else last.split(":")[0]
            if name != image["name"]:
                continue
            new = image.get("newName", name)
            if "digest" in image:
                container["image"] = f"{new}@{image['digest']}"
            else:
                container["image"] = f"{new}:{image['newTag']}" if "newTag" in image else new
