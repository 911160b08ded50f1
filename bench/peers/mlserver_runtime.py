"""A thin MLServer runtime serving an ONNX model with onnxruntime (runs in .peers/mlserver).

Only MLServer, numpy and onnxruntime are imported: this file is loaded by MLServer's own
interpreter, not Lumen's. Session options match Lumen's inference server (full graph
optimisation, thread spinning as ``PEER_ALLOW_SPINNING`` says: off, as in Lumen, unless set) so
that the comparison is of the servers, not of the model runs. The thread count differs on
purpose: this runtime runs one execution at a time, so it gets an intra-op thread per core
(``PEER_INTRA_OP_THREADS``, 2), its best shape; Lumen runs two single-threaded executions.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


class OnnxModel(MLModel):
    async def load(self) -> bool:
        path = await get_model_uri(self._settings)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("PEER_INTRA_OP_THREADS", "2"))
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # onnxruntime spins by default; Lumen's server does not unless told to.
        spinning = os.environ.get("PEER_ALLOW_SPINNING", "0")
        options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
        options.add_session_config_entry("session.inter_op.allow_spinning", spinning)
        self._session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self._outputs = [o.name for o in self._session.get_outputs()]
        self.ready = True
        return self.ready

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feeds = {i.name: NumpyCodec.decode_input(i) for i in payload.inputs}
        wanted = [o.name for o in payload.outputs] if payload.outputs else self._outputs
        results = self._session.run(wanted, feeds)
        outputs = []
        for name, value in zip(wanted, results, strict=True):
            array = np.asarray(value)
            encoded = NumpyCodec.encode_output(name=name, payload=array)
            encoded.shape = list(array.shape)  # NumpyCodec turns [N] into [N, 1]
            outputs.append(encoded)
        return InferenceResponse(model_name=self.name, model_version=self.version, outputs=outputs)
