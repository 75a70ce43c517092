import { describe, expect, it } from 'vitest';
import { endpointAddress } from '../../src/http/routes/endpoints.js';

describe('DescribeEndpoint addresses', () => {
  it('names a listener by its bound host and port', () => {
    expect(endpointAddress('mqtts://10.0.0.5:8883', 'ops.example')).toBe('10.0.0.5:8883');
    expect(endpointAddress('http://127.0.0.1:8443', 'ops.example')).toBe('127.0.0.1:8443');
  });

  it('names a listener bound to every interface by the host the caller used', () => {
    expect(endpointAddress('mqtt://0.0.0.0:1883', 'fleet.example')).toBe('fleet.example:1883');
    expect(endpointAddress('mqtt://[::]:1883', 'fleet.example')).toBe('fleet.example:1883');
  });

  it('gives an external broker (MQTT_URL) without its credentials or options, with the default port', () => {
    expect(endpointAddress('mqtt://fleetjobs:secret@broker.example?share=none', 'x')).toBe(
      'broker.example:1883',
    );
    expect(endpointAddress('mqtts://broker.example', 'x')).toBe('broker.example:8883');
  });
});
