/** The message the test gRPC services exchange, as JSON: no .proto to compile. */
export interface EchoMessage {
  text: string;
  n: number;
}

/** A method of a gRPC service definition (grpc-js's `MethodDefinition`, JSON-serialized `EchoMessage`s). */
export interface EchoMethod {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestSerialize(value: EchoMessage): Buffer;
  requestDeserialize(bytes: Buffer): EchoMessage;
  responseSerialize(value: EchoMessage): Buffer;
  responseDeserialize(bytes: Buffer): EchoMessage;
}

const serialize = (value: EchoMessage): Buffer => Buffer.from(JSON.stringify(value));
const deserialize = (bytes: Buffer): EchoMessage => JSON.parse(bytes.toString()) as EchoMessage;

/**
 * One method of a test gRPC service, for `grpc.makeGenericClientConstructor` and `server.addService`.
 *
 * @example
 * const service = { unary: echoMethod('/relay.test.Echo/Unary'), feed: echoMethod('/relay.test.Echo/Feed', { responseStream: true }) };
 */
export function echoMethod(path: string, streams: { requestStream?: boolean; responseStream?: boolean } = {}): EchoMethod {
  return {
    path,
    requestStream: streams.requestStream ?? false,
    responseStream: streams.responseStream ?? false,
    requestSerialize: serialize,
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: deserialize,
  };
}
