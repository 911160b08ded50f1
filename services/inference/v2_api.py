"""``inference.GRPCInferenceService``: the Open Inference Protocol over the raw models."""

from __future__ import annotations

import grpc
import inference.grpc_service_pb2 as pb
import inference.grpc_service_pb2_grpc as pb_grpc

from services.inference import metrics
from services.inference.errors import InvalidArgument, NotFound
from services.inference.grpc_common import deadline_of, rpc
from services.inference.input_limits import check_limits
from services.inference.repository import ModelRepository
from services.inference.v2_codec import (
    CONFIG_TO_V2,
    check_inputs,
    decode_inputs,
    encode_outputs,
    metadata_shape,
)
from shared.metrics import lumen_version

SERVER_NAME = "lumen-inference"


def parse_version(raw: str) -> int | None:
    """'' means the version being served; anything else must be a positive integer."""
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise NotFound(f"no model version {raw!r} (versions are positive integers)")
    return int(raw)


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, repository: ModelRepository) -> None:
        self.repository = repository

    @rpc("ServerLive")
    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    @rpc("ServerReady")
    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.repository.ready)

    @rpc("ModelReady")
    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelReadyResponse:
        if not request.name:
            raise InvalidArgument("name is required")
        if not self.repository.is_ready(request.name) and not self.repository.versions_on_disk(
            request.name
        ):
            raise NotFound(f"unknown model {request.name!r}")
        try:
            version = parse_version(request.version)
        except NotFound:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=self.repository.is_ready(request.name, version))

    @rpc("ServerMetadata")
    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=lumen_version(), extensions=[])

    @rpc("ModelMetadata")
    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        loaded = self.repository.get(request.name, parse_version(request.version))
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=loaded.name,
            versions=[str(loaded.version)],
            platform=loaded.config.platform,
            inputs=[
                tensor(name=t.name, datatype=CONFIG_TO_V2[t.dtype], shape=metadata_shape(t))
                for t in loaded.config.inputs
            ],
            outputs=[
                tensor(name=t.name, datatype=CONFIG_TO_V2[t.dtype], shape=metadata_shape(t))
                for t in loaded.config.outputs
            ],
        )

    @rpc("ModelInfer")
    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInferResponse:
        loaded = self.repository.get(request.model_name, parse_version(request.model_version))
        assert loaded.batcher is not None
        try:
            inputs = check_inputs(decode_inputs(request), loaded.config, loaded.batcher.max_rows)
            check_limits(inputs, loaded.config, loaded.limits)
            requested = [o.name for o in request.outputs]
            declared = {t.name for t in loaded.config.outputs}
            unknown = [n for n in requested if n not in declared]
            if unknown:
                raise InvalidArgument(
                    f"unknown outputs {unknown}; {loaded.name} has {sorted(declared)}"
                )
        except InvalidArgument:
            metrics.REQUESTS.labels(loaded.name, str(loaded.version), "failure").inc()
            raise
        outputs = await loaded.infer(inputs, deadline_of(context))
        tensors, raw = encode_outputs(outputs, requested, loaded.config)
        return pb.ModelInferResponse(
            model_name=loaded.name,
            model_version=str(loaded.version),
            id=request.id,
            outputs=tensors,
            raw_output_contents=raw,
        )
