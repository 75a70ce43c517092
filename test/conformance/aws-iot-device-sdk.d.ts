/** The part of aws-iot-device-sdk (v1, no bundled types) the conformance tests use. */
declare module 'aws-iot-device-sdk' {
  import type { EventEmitter } from 'node:events';

  interface JobsClient extends EventEmitter {
    subscribeToJobs(
      thingName: string,
      operationName: string,
      callback: (err: Error | null, job: never) => void,
    ): void;
    startJobNotifications(thingName: string, callback?: (err?: Error) => void): void;
    end(force: boolean, callback: () => void): void;
  }
  const awsIot: { jobs(options: Record<string, unknown>): JobsClient };
  export default awsIot;
}
