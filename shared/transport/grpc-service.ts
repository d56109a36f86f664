/**
 * grpc-js wants a ServiceDefinition of paths and (de)serializers; protobuf-es gives service descriptors.
 * This bridges the two once, so both the coordinator (server) and the agent (client) serve and call the
 * generated contract without a second, hand-written description of it.
 */
import * as grpc from "@grpc/grpc-js";
import { fromBinary, toBinary, type DescMessage, type DescService, type MessageShape } from "@bufbuild/protobuf";

export function grpcServiceDefinition(service: DescService): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<any, any>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: serializerFor(method.input),
      requestDeserialize: deserializerFor(method.input),
      responseSerialize: serializerFor(method.output),
      responseDeserialize: deserializerFor(method.output),
      originalName: method.name,
    };
  }
  return definition;
}

function serializerFor<T extends DescMessage>(schema: T): (value: MessageShape<T>) => Buffer {
  return (value) => {
    const bytes = toBinary(schema, value);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializerFor<T extends DescMessage>(schema: T): (bytes: Buffer) => MessageShape<T> {
  return (bytes) => fromBinary(schema, bytes);
}

/** A typed client constructor for a generated service. */
export function grpcClientConstructor(service: DescService): grpc.ServiceClientConstructor {
  return grpc.makeGenericClientConstructor(grpcServiceDefinition(service), service.typeName);
}

/** Largest payload in one chunk of a model or update: far below gRPC's 4 MiB default message limit. */
export const CHUNK_BYTES = 1 << 20;
