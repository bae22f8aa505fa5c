/**
 * grpc-js servers take their services before they start; the daemon's services come and go
 * (a manager's Control appears at init or promotion, goes at demotion or leave), so each is
 * registered once as a proxy to whatever implementation is current, and a call while there is
 * none ends with a clear unavailable status.
 */
import type {
  ServiceDefinition,
  UntypedServiceImplementation,
  ServerUnaryCall,
  ServerWritableStream,
  ServerReadableStream,
} from '@grpc/grpc-js';
import { toErrorStatus } from '@shoal/api';
import type { ShoalError } from '@shoal/common';

type AnyHandler = (call: unknown, callback?: unknown) => void;

export function dynamicService(
  definition: ServiceDefinition,
  current: () => UntypedServiceImplementation | undefined | Promise<UntypedServiceImplementation | undefined>,
  missing: (method: string) => ShoalError,
): UntypedServiceImplementation {
  const impl: UntypedServiceImplementation = {};
  for (const [key, method] of Object.entries(definition)) {
    impl[key] = ((
      call:
        | ServerUnaryCall<unknown, unknown>
        | ServerWritableStream<unknown, unknown>
        | ServerReadableStream<unknown, unknown>,
      callback?: (err: unknown) => void,
    ) => {
      const run = (svc: UntypedServiceImplementation | undefined): void => {
        const target = svc?.[key] as AnyHandler | undefined;
        if (target) {
          target(call, callback);
          return;
        }
        const status = toErrorStatus(missing(method.path));
        if (callback) callback(status);
        else (call as ServerWritableStream<unknown, unknown>).emit('error', status);
      };
      const svc = current();
      if (svc instanceof Promise) {
        svc.then(run, (err: unknown) => {
          const status = toErrorStatus(err);
          if (callback) callback(status);
          else (call as ServerWritableStream<unknown, unknown>).emit('error', status);
        });
      } else run(svc);
    }) as never;
  }
  return impl;
}
