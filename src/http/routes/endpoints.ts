import type { FastifyPluginAsync } from 'fastify';
import { FleetJobsError } from '../../protocol/errors.js';
import type { HttpDeps } from '../app.js';
import { RESPONSES } from '../schemas/responses.js';

/** Where devices connect, as URLs (mqtt://host:port); each is absent when that listener is not configured. */
export interface DeviceEndpoints {
  /** MQTTS when MQTTS_PORT is set, else MQTT; in external-broker mode the broker of MQTT_URL. */
  mqtt?: string | undefined;
  /** The device HTTPS data plane (DEVICE_HTTP_PORT). */
  deviceHttp?: string | undefined;
}

const ENDPOINT_TYPES = ['iot:Data', 'iot:Data-ATS', 'iot:CredentialProvider', 'iot:Jobs'];
const WILDCARDS = new Set(['0.0.0.0', '[::]', '::']);

/**
 * `host:port` of a listener URL, as AWS answers a bare host the client puts a scheme in front of. A listener
 * bound to every interface is reached under the name the caller used for the operator API.
 */
export function endpointAddress(listener: string, requestHost: string): string {
  const u = new URL(listener);
  const host = WILDCARDS.has(u.hostname) ? requestHost : u.hostname;
  const port = u.port !== '' ? u.port : ['mqtts:', 'ssl:'].includes(u.protocol) ? '8883' : '1883';
  return `${host}:${port}`;
}

/** AWS IoT DescribeEndpoint (`GET /endpoint?endpointType=`): the MQTT and HTTPS endpoints devices connect to. */
export function endpointRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Querystring: { endpointType?: string } }>(
      '/endpoint',
      {
        schema: {
          summary: 'DescribeEndpoint: where devices connect (iot:Data-ATS, iot:Data: MQTT; iot:Jobs: HTTPS)',
          tags: ['endpoints'],
          response: { 200: RESPONSES.describeEndpoint },
          querystring: {
            type: 'object',
            properties: { endpointType: { type: 'string', enum: ENDPOINT_TYPES } },
          },
        },
      },
      async (request) => {
        // AWS's default is the legacy iot:Data; here both data types name the same broker.
        const type = request.query.endpointType ?? 'iot:Data';
        const endpoints = deps.deviceEndpoints?.() ?? {};
        if (type === 'iot:CredentialProvider') {
          throw new FleetJobsError('ResourceNotFound', 'fleetjobs has no credential provider endpoint');
        }
        const listener = type === 'iot:Jobs' ? endpoints.deviceHttp : endpoints.mqtt;
        if (listener === undefined || listener === '') {
          throw new FleetJobsError(
            'ResourceNotFound',
            type === 'iot:Jobs'
              ? 'the device HTTPS data plane is off; set DEVICE_HTTP_PORT'
              : 'no MQTT listener is running',
          );
        }
        return { endpointAddress: endpointAddress(listener, request.hostname) };
      },
    );
  };
}
