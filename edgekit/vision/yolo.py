"""Decoders for Ultralytics YOLOv5, YOLOv8 / YOLO11 and end-to-end ONNX exports, and recognising Ultralytics
exports (also RT-DETR, decoded in ``edgekit.vision.rtdetr``) from their metadata_props.

Output layouts (boxes are centre x, centre y, width, height in model-input pixels):
  YOLOv5: (B, N, 5 + C)  rows [cx, cy, w, h, objectness, class scores...]; score = obj * class score
  YOLOv8: (B, 4 + C, N)  columns [cx, cy, w, h, class scores...] (transposed, no objectness)
  end-to-end (decoder ``yolo_end2end``; also ``yolov8`` with ``decoder["end2end"]``): Ultralytics
          ``nms=True`` and YOLOv10 / YOLO26 ``nms=False`` exports:
          (B, K, 6)      rows [x1, y1, x2, y2, score, class] already suppressed

Decoder parameters read from ``meta.decoder`` (defaults in ``DEFAULTS``):
  score_threshold, iou_threshold, max_detections, class_agnostic (NMS across classes),
  max_candidates (best-scoring boxes kept for NMS), output (output name to decode; default the first).

Results follow ``edgekit.vision.decoders``: {"task": "detection", "detections": [{"index",
"label", "score", "box": [x1, y1, x2, y2]}]} with boxes in source-frame pixels when a
``LetterboxInfo`` is given per image (model-input pixels otherwise).

``detect_yolo_format(props, output_shapes, input_shape)`` turns the ``metadata_props`` that
Ultralytics writes (``names``, ``stride``, ``imgsz``, ``task``, and since 8.4 ``head`` and ``end2end``;
YOLOv5's export writes ``names`` and ``stride``) plus the output shape into a ``ModelMeta``: letterbox
(stretch for RT-DETR), RGB, mean 0, std 1, pad 114; ``source.recognised`` says what matched.
``yolo_meta_from_onnx(path)`` does the same from a file without onnx or onnxruntime.
"""

import ast

import numpy as np

from edgekit.errors import MetadataError, ModelError
from edgekit.meta import ModelMeta, proto_fields, read_onnx_metadata_props
from edgekit.vision.nms import nms, xywh_to_xyxy

DEFAULTS = {"score_threshold": 0.25, "iou_threshold": 0.45, "max_detections": 100, "class_agnostic": False,
            "max_candidates": 3000}


def _params(meta):
    params = dict(DEFAULTS)
    params.update({k: v for k, v in meta.decoder.items() if v is not None})
    return params


def pick_output(outputs, params):
    """The output tensor a one-output decoder reads: ``decoder.output`` by name, else the first."""
    if isinstance(outputs, dict):
        name = params.get("output")
        if name is not None:
            if name not in outputs:
                raise ModelError("model has no output %r (outputs: %s)" % (name, ", ".join(outputs)),
                                 hint="fix decoder.output in the model metadata")
            return np.asarray(outputs[name])
        return np.asarray(list(outputs.values())[0])
    if isinstance(outputs, (list, tuple)):
        return np.asarray(outputs[0])
    return np.asarray(outputs)


def _label(labels, index):
    return labels[index] if 0 <= index < len(labels) else str(index)


def finish_detections(boxes, scores, classes, meta, params, info):
    """Threshold-filtered candidates -> NMS -> frame pixels -> result dict."""
    limit = int(params["max_candidates"])
    if boxes.shape[0] > limit:                        # like Ultralytics' max_nms: bound the NMS work
        top = np.argpartition(-scores, limit - 1)[:limit]
        boxes, scores, classes = boxes[top], scores[top], classes[top]
    if boxes.shape[0]:
        keep = nms(boxes, scores, float(params["iou_threshold"]),
                   classes=None if params["class_agnostic"] else classes,
                   max_det=int(params["max_detections"]))
        boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    return detection_result(boxes, scores, classes, meta, info)


def detection_result(boxes, scores, classes, meta, info):
    """Boxes in model-input pixels -> the detection result dict, boxes in source-frame pixels."""
    if info is not None and boxes.shape[0]:
        boxes = info.to_frame(boxes)
    detections = [{"index": int(c), "label": _label(meta.labels, int(c)), "score": float(s),
                   "box": [float(v) for v in b]}
                  for b, s, c in zip(boxes, scores, classes)]
    return {"task": "detection", "detections": detections}


def info_at(infos, i):
    """Image ``i``'s LetterboxInfo, or None when the caller passed none."""
    if infos is None or i >= len(infos):
        return None
    return infos[i]


def _candidates_v5(rows, params):
    """(N, 5+C) -> boxes xyxy, scores, classes above the score threshold."""
    threshold = float(params["score_threshold"])
    rows = rows[rows[:, 4] > threshold]               # cheap objectness pre-filter
    cls_scores = rows[:, 5:] * rows[:, 4:5]
    classes = cls_scores.argmax(axis=1) if rows.shape[0] else np.zeros((0,), dtype=np.int64)
    scores = cls_scores[np.arange(rows.shape[0]), classes] if rows.shape[0] else np.zeros((0,), np.float32)
    mask = scores > threshold
    return xywh_to_xyxy(rows[mask, :4]), scores[mask].astype(np.float32), classes[mask]


def _candidates_v8(columns, params):
    """(4+C, N), the export's own layout -> boxes xyxy, scores, classes above the score threshold.
    The best score per box is a reduction over contiguous rows; argmax only for the survivors."""
    cls_scores = columns[4:]
    best = cls_scores.max(axis=0)
    keep = np.nonzero(best > float(params["score_threshold"]))[0]
    classes = cls_scores[:, keep].argmax(axis=0)
    return xywh_to_xyxy(columns[:4, keep].T), best[keep].astype(np.float32), classes


def _check_rank(array, what, expected):
    if array.ndim != 3:
        raise ModelError("%s output must have 3 dimensions %s, got shape %s" % (what, expected, array.shape),
                         hint="check decoder.type in the model metadata (yolov5 or yolov8)")


def decode_v5(outputs, meta, infos=None):
    """YOLOv5 (B, N, 5+C) -> one detection result per image."""
    params = _params(meta)
    array = pick_output(outputs, params).astype(np.float32, copy=False)
    _check_rank(array, "YOLOv5", "(batch, boxes, 5 + classes)")
    if array.shape[2] < 6:
        raise ModelError("YOLOv5 output has %d values per box, needs at least 6" % array.shape[2],
                         hint="is this a YOLOv8 export? set decoder.type to yolov8")
    return _per_image(array, _candidates_v5, meta, params, infos)


def decode_v8(outputs, meta, infos=None):
    """YOLOv8 (B, 4+C, N) -> one detection result per image; end-to-end (B, K, 6) when
    ``decoder["end2end"]`` is set."""
    params = _params(meta)
    array = pick_output(outputs, params).astype(np.float32, copy=False)
    _check_rank(array, "YOLOv8", "(batch, 4 + classes, boxes)")
    if params.get("end2end"):
        return [_end2end(array[i], meta, params, info_at(infos, i)) for i in range(array.shape[0])]
    if array.shape[1] < 5:
        raise ModelError("YOLOv8 output has %d values per box, needs at least 5" % array.shape[1],
                         hint="is this a YOLOv5 export? set decoder.type to yolov5")
    return _per_image(array, _candidates_v8, meta, params, infos)


def decode_end2end(outputs, meta, infos=None):
    """End-to-end (B, K, 6) rows [x1, y1, x2, y2, score, class] in model-input pixels (YOLOv10, YOLO26,
    ``nms=True`` exports): thresholded and sorted, no NMS."""
    params = _params(meta)
    array = pick_output(outputs, params).astype(np.float32, copy=False)
    _check_rank(array, "end-to-end YOLO", "(batch, detections, 6)")
    return [_end2end(array[i], meta, params, info_at(infos, i)) for i in range(array.shape[0])]


def _per_image(array, candidates, meta, params, infos):
    """One detection result per image of the batch, from its (boxes, scores, classes) candidates."""
    results = []
    for i in range(array.shape[0]):
        boxes, scores, classes = candidates(array[i], params)
        results.append(finish_detections(boxes, scores, classes, meta, params, info_at(infos, i)))
    return results


def _end2end(rows, meta, params, info):
    """(K, 6) rows [x1, y1, x2, y2, score, class], NMS already done by the model."""
    if rows.shape[-1] != 6:
        raise ModelError("end-to-end YOLO output must have 6 values per box, got %d" % rows.shape[-1],
                         hint="use decoder.type yolov8 for raw YOLOv8 outputs")
    rows = rows[rows[:, 4] > float(params["score_threshold"])]
    rows = rows[np.argsort(-rows[:, 4], kind="mergesort")][:int(params["max_detections"])]
    return detection_result(rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64), meta, info)


# -- recognising Ultralytics exports ------------------------------------------------------------
def _literal(text, key):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise MetadataError("Ultralytics metadata %r is not a Python literal: %.60r" % (key, text),
                            hint="re-export the model, or describe it with --meta FILE.yaml")


def _names(props):
    names = _literal(props["names"], "names")
    if isinstance(names, dict):
        try:
            return [str(names[i]) for i in range(len(names))]
        except KeyError:
            raise MetadataError("Ultralytics names are not numbered 0..%d" % (len(names) - 1),
                                hint="describe the model with --meta FILE.yaml")
    if isinstance(names, (list, tuple)):
        return [str(n) for n in names]
    raise MetadataError("Ultralytics names must be a dict or list, got %s" % type(names).__name__)


def _imgsz(props, input_shape):
    if "imgsz" in props:
        size = _literal(props["imgsz"], "imgsz")
        size = [size, size] if isinstance(size, int) else list(size)
        if len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size):
            return size
    if input_shape is not None and len(input_shape) == 4:
        h, w = input_shape[2], input_shape[3]
        if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
            return [h, w]
    raise MetadataError("cannot tell the input size of this Ultralytics model (no imgsz, dynamic input)",
                        hint="export it with a fixed imgsz, or describe it with --meta FILE.yaml")


def _model_name(props):
    """"YOLO11n", "YOLOv10n", "rtdetr-l"... from Ultralytics' description ("Ultralytics YOLO11n model ...")."""
    words = props.get("description", "").split()
    return words[1] if len(words) > 1 and words[0] == "Ultralytics" else ""


def _guess_type(shape, num_classes, props):
    """(decoder type, how) from Ultralytics' ``head`` / ``end2end`` / description and the first output's shape.

    [1, 4+C, N] yolov8 (also YOLO11, YOLO26 and v10 exported with their one-to-many head);
    [1, N, 5+C] yolov5; [1, K, 6] yolo_end2end ([x1, y1, x2, y2, score, class]: YOLOv10, YOLO26 and
    ``nms=True`` exports); RT-DETR (head ``RTDETRDecoder`` or "rtdetr" in the description): [1, K, 4+C]
    (Ultralytics <= 8.3) or [1, K, 6] top-k rows, boxes cx, cy, w, h normalised to 0..1.
    """
    head = props.get("head", "")
    rank3 = bool(shape) and len(shape) == 3
    if head == "RTDETRDecoder" or "rtdetr" in _model_name(props).lower().replace("-", ""):
        if rank3 and shape[-1] in (4 + num_classes, 6):
            return "rtdetr", "head %s" % (head or "RT-DETR (description)")
    elif props.get("end2end", "").strip() == "True" or (rank3 and shape[-1] == 6 and shape[1] != 4 + num_classes):
        return "yolo_end2end", "end-to-end output %s" % (shape,)
    elif rank3:
        if shape[2] == 5 + num_classes:
            return "yolov5", "output %s = (1, boxes, 5 + %d classes)" % (shape, num_classes)
        if shape[1] == 4 + num_classes:
            return "yolov8", "output %s = (1, 4 + %d classes, boxes)" % (shape, num_classes)
    raise MetadataError("output shape %s matches neither YOLOv5 (1, N, %d), YOLOv8 (1, %d, N), an end-to-end "
                        "(1, K, 6) nor RT-DETR (1, K, %d)" % (shape, 5 + num_classes, 4 + num_classes,
                                                            4 + num_classes),
                        hint="describe the model with --meta FILE.yaml")


def detect_yolo_format(props, output_shapes=None, input_shape=None, input_name="images"):
    """``metadata_props`` (dict) of an Ultralytics export + output shapes -> ModelMeta, or None when
    the props do not look like Ultralytics (no ``names`` and ``stride``).

    ``output_shapes``: list of shapes (first output decoded); ``input_shape``: [N, C, H, W].
    """
    if "names" not in props or "stride" not in props:
        return None
    task = props.get("task", "detect")
    if task != "detect":
        raise MetadataError("Ultralytics %r models are not supported (detect only)" % task,
                            hint="export a detection model, or describe it with --meta FILE.yaml")
    labels = _names(props)
    hw = _imgsz(props, input_shape)
    shape = list(output_shapes[0]) if output_shapes else None
    decoder_type, how = _guess_type(shape, len(labels), props) if shape else ("yolov8", "no output shape")
    decoder = dict(DEFAULTS, type=decoder_type, stride=int(props.get("stride", 32)))
    resize = "letterbox"
    if decoder_type == "rtdetr":            # Ultralytics' RT-DETR predictor stretches (scale_fill), no NMS
        decoder = {"type": "rtdetr", "score_threshold": DEFAULTS["score_threshold"], "max_detections": 300,
                   "columns": "class" if shape[-1] == 6 and "head" in props else "scores"}
        resize = "stretch"
    elif decoder_type == "yolo_end2end":
        decoder = {"type": "yolo_end2end", "score_threshold": DEFAULTS["score_threshold"], "max_detections": 300}
    name = _model_name(props)
    return ModelMeta(
        task="detection", labels=labels,
        input={"name": input_name, "shape": [1, 3, hw[0], hw[1]], "layout": "NCHW",
               "dtype": "float16" if props.get("half", "").strip() == "True" else "float32"},
        preprocess={"color": "RGB", "resize": resize, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0],
                    "pad_value": 114},
        decoder=decoder,
        source={"framework": "ultralytics", "version": props.get("version", ""), "model": name,
                "description": props.get("description", ""),
                "recognised": "Ultralytics metadata_props (%s%s): %s" % (
                    name or "no model name", ", version %s" % props["version"] if props.get("version") else "",
                    how)})


def recognise(props, inputs, outputs):
    """Recogniser (``edgekit.vision.recognise``): an Ultralytics export, from its metadata_props."""
    if "names" not in props or "stride" not in props:
        return None
    input_name, input_shape = inputs[0] if inputs else ("images", None)
    return detect_yolo_format(props, [s for _, s in outputs], input_shape, input_name=input_name)


def yolo_meta_from_onnx(path):
    """ModelMeta for an Ultralytics ONNX file (pure-Python protobuf read), or None if not one."""
    props = read_onnx_metadata_props(path)
    if "names" not in props:
        return None
    inputs, outputs = read_onnx_io_shapes(path)
    input_name, input_shape = inputs[0] if inputs else ("images", None)
    return detect_yolo_format(props, [s for _, s in outputs], input_shape, input_name=input_name)


def read_onnx_io_shapes(path):
    """([(name, shape)] graph inputs that are not initializers, [(name, shape)] outputs) read from the
    protobuf wire format. Dimensions are ints, or the dim_param string for dynamic ones."""
    with open(path, "rb") as handle:
        data = memoryview(handle.read())
    try:
        graph = next(v for n, w, v in proto_fields(data) if n == 7 and w == 2)
    except StopIteration:
        raise ModelError("%s has no graph" % path, hint="re-export it")
    inputs, outputs, initializers = [], [], set()
    for number, wire, value in proto_fields(graph):
        if wire != 2:
            continue
        if number == 11:
            inputs.append(_value_info(value))
        elif number == 12:
            outputs.append(_value_info(value))
        elif number == 5:      # initializer: TensorProto, name = field 8
            initializers.update(bytes(v).decode("utf-8") for n, w, v in proto_fields(value) if n == 8 and w == 2)
    return [io for io in inputs if io[0] not in initializers], outputs


def _sub(buf, number):
    for n, w, v in proto_fields(buf):
        if n == number and w == 2:
            return v
    return None


def _value_info(buf):
    """ValueInfoProto -> (name, shape)."""
    name, shape = "", []
    for n, w, v in proto_fields(buf):
        if n == 1 and w == 2:
            name = bytes(v).decode("utf-8")
        elif n == 2 and w == 2:            # TypeProto.tensor_type (1) -> shape (2) -> dim (1)
            tensor = _sub(v, 1)
            dims = _sub(tensor, 2) if tensor is not None else None
            if dims is not None:
                for dn, dw, dim in proto_fields(dims):
                    if dn == 1 and dw == 2:
                        shape.append(_dim(dim))
    return name, shape


def _dim(buf):
    for n, w, v in proto_fields(buf):
        if n == 1 and w == 0:
            return int(v)
        if n == 2 and w == 2:
            return bytes(v).decode("utf-8")
    return "?"

