import type { Duplex } from 'node:stream';

/**
 * The embedded broker (Aedes 1.x) speaks MQTT 3.1 and 3.1.1. Aedes answers an MQTT 5 CONNECT with a 3.1.1
 * CONNACK, which an MQTT 5 decoder cannot read (the AWS CRT reports AWS_ERROR_MQTT5_DECODE_PROTOCOL_ERROR, not a
 * refusal). This answers it the way MQTT 5 defines for a version the server does not support instead: a v5
 * CONNACK with reason code 0x84, Unsupported Protocol Version (MQTT 5 §3.1.2.2), then the connection is closed.
 * MQTT 5 devices connect through an external broker (MQTT_URL), see docs/operations.md.
 */
export const MQTT5_UNSUPPORTED_CONNACK = Buffer.from([0x20, 0x03, 0x00, 0x84, 0x00]);

/** True when the CONNECT was MQTT 5 and has been refused (the caller must not go on with it). */
export function refuseMqtt5(conn: Duplex, protocolVersion: number, onRefused: () => void): boolean {
  if (protocolVersion !== 5) return false;
  onRefused();
  conn.end(MQTT5_UNSUPPORTED_CONNACK);
  return true;
}
