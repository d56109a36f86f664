#!/usr/bin/env python3
"""A gRPC client in another language that knows nothing of fedsynth's .proto files.

It asks the coordinator's health service, lists services through server reflection, rebuilds the message
types from the descriptors the server sends, and calls OperatorService.ListStudies with them. Prints one
JSON object. Usage: grpc_probe.py HOST:PORT
"""
import json
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format

try:
    from google.protobuf.message_factory import GetMessageClass
except ImportError:  # protobuf < 4.22
    from google.protobuf import message_factory

    def GetMessageClass(descriptor):
        return message_factory.MessageFactory().GetPrototype(descriptor)

REFLECTION = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, payload):
    """A length-delimited protobuf field, encoded by hand: the probe has no generated code at all."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def read_varint(data, i):
    value, shift = 0, 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def fields(data):
    """Decodes the top-level fields of a protobuf message into (number, value) pairs."""
    i = 0
    while i < len(data):
        key, i = read_varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(data, i)
            yield number, value
        elif wire == 2:
            n, i = read_varint(data, i)
            yield number, data[i:i + n]
            i += n
        else:
            raise ValueError("unexpected wire type %d" % wire)


def reflect(channel, request):
    call = channel.stream_stream(REFLECTION, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    return list(call(iter([request]), timeout=10))[0]


def main():
    address = sys.argv[1]
    channel = grpc.insecure_channel(address)
    result = {}

    check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda b: b, response_deserializer=lambda b: b)
    for service in ["", "fedsynth.v1.AgentService", "fedsynth.v1.OperatorService"]:
        response = check(field(1, service.encode()) if service else b"", timeout=10)
        status = dict(fields(response)).get(1, 0)
        result["health:" + (service or "server")] = {1: "SERVING", 2: "NOT_SERVING"}.get(status, "UNKNOWN")

    listing = dict(fields(reflect(channel, field(7, b""))))[6]
    result["services"] = sorted(dict(fields(s))[1].decode() for n, s in fields(listing) if n == 1)

    files = dict(fields(reflect(channel, field(4, b"fedsynth.v1.OperatorService"))))[4]
    protos = [descriptor_pb2.FileDescriptorProto.FromString(b) for n, b in fields(files) if n == 1]
    pool = descriptor_pool.DescriptorPool()
    pending = {p.name: p for p in protos}
    while pending:
        for name, proto in list(pending.items()):
            if all(dep not in pending for dep in proto.dependency):
                pool.Add(proto)
                del pending[name]
    request_type = GetMessageClass(pool.FindMessageTypeByName("fedsynth.v1.ListStudiesRequest"))
    response_type = GetMessageClass(pool.FindMessageTypeByName("fedsynth.v1.ListStudiesResponse"))
    list_studies = channel.unary_unary(
        "/fedsynth.v1.OperatorService/ListStudies",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_type.FromString,
    )
    studies = list_studies(request_type(), timeout=10)
    result["studies"] = json_format.MessageToDict(studies).get("studies", [])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
