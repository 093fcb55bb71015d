"""The Open Inference Protocol v2 (KServe, MLServer, Triton): tensors in, tensors out.

A request sends one tensor per input column: ``{"name", "shape", "datatype", "data"}``, with
``data`` flat or nested in row-major order. The shape must match the data (``[n]`` or
``[n, 1]``: one value per row) and the datatype must be one of the protocol's, of the
column's kind; a request that breaks the protocol gets a 400 with the protocol's
``{"error": ...}`` body. The rows are then checked like any other (422 naming the field).

Datatypes are declared as the values are: inputs from the signature's column types (int
INT64, float FP64, bool BOOL, text, categories and dates BYTES), the ``prediction`` output
from the type of the predictions (a classifier's classes: int INT64, float FP64, bool BOOL,
text BYTES; a regressor FP64), and ``probabilities`` FP64, shaped ``[rows, classes]`` with
the class names in its parameters.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from shipyard.serving.inputs import RequestError, sized

if TYPE_CHECKING:
    from shipyard.registry.signatures import Signature
    from shipyard.serving.reload import Slot
    from shipyard.serving.routing import Plan

__all__ = ["answer", "check_datatypes", "infer_body", "metadata"]

INTS = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
FLOATS = frozenset({"FP16", "FP32", "FP64"})
DATATYPES = INTS | FLOATS | {"BOOL", "BYTES"}
# The protocol's datatypes a column of each signature type accepts.
ACCEPTS = {
    "int": INTS,
    "float": INTS | FLOATS,
    "bool": frozenset({"BOOL"}),
}


def _bad(message: str) -> RequestError:
    return RequestError(400, "invalid_input", message)


def infer_body(doc: Any) -> list[dict[str, Any]]:
    """The rows of an inference request: one tensor per column, each ``[n]`` or ``[n, 1]``.

    Raises:
        RequestError: 400 naming the tensor and what breaks the protocol (name, shape,
            datatype, data, or tensors of different lengths).
    """
    inputs = doc.get("inputs") if isinstance(doc, dict) else None
    if not isinstance(inputs, list) or not inputs:
        raise _bad('"inputs" must be a non-empty list of tensors')
    columns: dict[str, list[Any]] = {}
    for i, t in enumerate(inputs):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise _bad(f"inputs[{i}] needs a name, a shape, a datatype and data")
        name = t["name"]
        where = f"inputs[{i}] ({name})"
        if name in columns:
            raise _bad(f"{where}: the tensor {name!r} is sent twice")
        datatype = t.get("datatype")
        if not isinstance(datatype, str) or datatype not in DATATYPES:
            raise _bad(
                f"{where}: datatype {datatype!r} is not one of the protocol's: "
                + ", ".join(sorted(DATATYPES))
            )
        shape = t.get("shape")
        if (
            not isinstance(shape, list)
            or not 1 <= len(shape) <= 2
            or not all(type(d) is int and d >= 0 for d in shape)
            or (len(shape) == 2 and shape[1] != 1)
        ):
            raise _bad(
                f"{where}: shape must be [rows] or [rows, 1] (one value per row), got {shape!r}"
            )
        data = t.get("data")
        if not isinstance(data, list):
            raise _bad(f"{where}: data must be a list of values")
        values = _flat(data, where)
        if len(values) != math.prod(shape):
            raise _bad(
                f"{where}: shape {shape} holds {math.prod(shape)} values, data has {len(values)}"
            )
        columns[name] = values
    sizes = {len(v) for v in columns.values()}
    if len(sizes) != 1:
        raise _bad("every input tensor needs the same number of rows")
    n = sizes.pop()
    return sized([{c: v[i] for c, v in columns.items()} for i in range(n)])


def _flat(data: list[Any], where: str) -> list[Any]:
    """``data`` in row-major order: flat already, or one list per row."""
    if not any(isinstance(v, list) for v in data):
        return data
    out = []
    for v in data:
        if isinstance(v, list):
            if any(isinstance(x, list | dict) for x in v):
                raise _bad(f"{where}: data nests deeper than [rows, 1]")
            out.extend(v)
        else:
            out.append(v)
    return out


def check_datatypes(doc: dict[str, Any], signature: Signature) -> None:
    """Refuse a tensor whose datatype is not of its column's kind (INT64 for a text
    column...); tensors for columns the signature does not name are left to the row checks.

    Raises:
        RequestError: 400 naming the tensor, its datatype and the one to send.
    """
    columns = signature.inputs.columns
    for i, t in enumerate(doc["inputs"]):
        spec = columns.get(t["name"])
        if spec is None:
            continue
        accepted = ACCEPTS.get(spec.type, frozenset({"BYTES"}))
        if t["datatype"] not in accepted:
            raise _bad(
                f"inputs[{i}] ({t['name']}): datatype {t['datatype']} does not fit the "
                f"column's type {spec.type}; send {input_datatype(spec.type)}"
            )


def input_datatype(kind: str | None) -> str:
    """The datatype of a signature column type."""
    return {"int": "INT64", "float": "FP64", "bool": "BOOL"}.get(kind or "", "BYTES")


def output_datatype(signature: Signature | None) -> str:
    """The datatype of the predictions: the classes' type, FP64 for a regressor."""
    if signature is None:
        return "BYTES"
    outputs = signature.outputs
    if outputs.get("kind") == "regression":
        return "FP64"
    return {"int": "INT64", "float": "FP64", "bool": "BOOL"}.get(outputs.get("dtype", ""), "BYTES")


def answer(
    name: str, slot: Slot, ids: list[str], outputs: list[dict[str, Any]], doc: Any
) -> dict[str, Any]:
    """The inference response: the request's id echoed (else the row's request id), the
    ``prediction`` tensor and, for a classifier, ``probabilities``; the request id of every
    row in ``parameters``."""
    sent = doc.get("id") if isinstance(doc, dict) else None
    n = len(outputs)
    tensors: list[dict[str, Any]] = [
        {
            "name": "prediction",
            "shape": [n],
            "datatype": output_datatype(slot.predictor.signature),
            "data": [o["prediction"] for o in outputs],
        }
    ]
    if outputs and "probabilities" in outputs[0]:
        classes = list(outputs[0]["probabilities"])
        tensors.append(
            {
                "name": "probabilities",
                "shape": [n, len(classes)],
                "datatype": "FP64",
                "data": [p for o in outputs for p in o["probabilities"].values()],
                "parameters": {"classes": classes},
            }
        )
    return {
        "model_name": name,
        "model_version": slot.label,
        "id": sent if isinstance(sent, str) else ids[0],
        "outputs": tensors,
        "parameters": {"request_ids": ids},
    }


def metadata(name: str, plan: Plan) -> dict[str, Any] | None:
    """The model metadata of the deployment ``name``; None when nothing serves."""
    slots = plan.slots
    first = next((slots[a] for a in plan.deployment.routes if a in slots), None)
    if first is None:
        return None
    signature = first.predictor.signature
    columns = signature.inputs.columns if signature is not None else {}
    outputs: list[dict[str, Any]] = [
        {"name": "prediction", "datatype": output_datatype(signature), "shape": [-1]}
    ]
    classes = signature.outputs.get("classes") if signature is not None else None
    if classes is not None and hasattr(first.predictor.model, "predict_proba"):
        outputs.append(
            {
                "name": "probabilities",
                "datatype": "FP64",
                "shape": [-1, len(classes)],
                "parameters": {"classes": [str(c) for c in classes]},
            }
        )
    inputs = [
        {"name": c, "datatype": input_datatype(spec.type), "shape": [-1]}
        for c, spec in columns.items()
    ]
    lookup = first.features
    if lookup is not None:  # the entity's id instead of the columns the server looks up
        inputs = [i for i in inputs if i["name"] not in lookup.columns]
        known = {i["name"] for i in inputs}
        inputs += [
            {"name": k, "datatype": input_datatype(kind), "shape": [-1]}
            for k, kind in zip(lookup.join_keys, lookup.key_types, strict=True)
            if k not in known
        ]
    return {
        "name": name,
        "versions": sorted({s.label for s in slots.values()}, key=int),
        "platform": "shipyard-sklearn",
        "inputs": inputs,
        "outputs": outputs,
        "aliases": {a: s.version for a, s in slots.items()},
        "parameters": {
            "deployment": plan.describe(),
            "scoring": {a: s.scoring for a, s in slots.items()},
        },
    }
