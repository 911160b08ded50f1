"""KServe's Python model server serving an ONNX model with onnxruntime (runs in .peers/kserve).

Started as ``.peers/kserve/bin/python kserve_runtime.py`` with PEER_MODEL_NAME,
PEER_MODEL_PATH, PEER_HTTP_PORT and PEER_GRPC_PORT (and optionally PEER_ALLOW_SPINNING) in
the environment. KServe 0.21 binds all interfaces with no option to change it; its gRPC and
HTTP listeners are narrowed to 127.0.0.1 here before it starts. KServe has no server-side
batching. Only KServe, numpy and onnxruntime are imported.
"""

from __future__ import annotations

import os
from typing import Any

import grpc.aio._server as aio_server
import numpy as np
import onnxruntime as ort
import uvicorn

_add_port = aio_server.Server.add_insecure_port
_config_init = uvicorn.Config.__init__


def _local_port(self: Any, address: str) -> Any:
    return _add_port(self, address.replace("[::]", "127.0.0.1"))


def _local_config(self: Any, *args: Any, **kwargs: Any) -> None:
    kwargs["host"] = "127.0.0.1"
    _config_init(self, *args, **kwargs)


aio_server.Server.add_insecure_port = _local_port
uvicorn.Config.__init__ = _local_config  # type: ignore[method-assign]

from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer  # noqa: E402


class OnnxModel(Model):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.load()

    def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("PEER_INTRA_OP_THREADS", "2"))
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # onnxruntime spins by default; Lumen's server does not unless told to.
        spinning = os.environ.get("PEER_ALLOW_SPINNING", "0")
        options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
        options.add_session_config_entry("session.inter_op.allow_spinning", spinning)
        self.session = ort.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.ready = True
        return self.ready

    async def predict(self, payload: Any, headers: Any = None, response_headers: Any = None) -> Any:
        assert isinstance(payload, InferRequest)
        feeds = {i.name: i.as_numpy() for i in payload.inputs}
        wanted = [o.name for o in (payload.request_outputs or [])] or self.output_names
        results = self.session.run(wanted, feeds)
        outputs = []
        for name, value in zip(wanted, results, strict=True):
            array = np.asarray(value)
            output = InferOutput(name=name, shape=list(array.shape), datatype="FP32")
            output.set_data_from_numpy(array, binary_data=payload.use_binary_outputs)
            outputs.append(output)
        return InferResponse(
            model_name=self.name,
            infer_outputs=outputs,
            response_id=payload.id,
            use_binary_outputs=payload.use_binary_outputs,
        )


if __name__ == "__main__":
    import logging

    model = OnnxModel(os.environ["PEER_MODEL_NAME"], os.environ["PEER_MODEL_PATH"])
    server = ModelServer(
        http_port=int(os.environ["PEER_HTTP_PORT"]),
        grpc_port=int(os.environ["PEER_GRPC_PORT"]),
        enable_grpc=True,
        enable_latency_logging=False,
        workers=1,
    )
    # KServe logs one INFO line per gRPC call; that is not serving work, so it is silenced.
    logging.getLogger("kserve").setLevel(logging.WARNING)
    server.start([model])
