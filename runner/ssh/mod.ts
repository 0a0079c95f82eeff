/**
 * SSH transport of rkhil (on `ssh2`): pinned host keys, bounded connects that ride out a
 * booting target, exec channels with timeouts that kill the remote command, a persistent
 * shell channel as a plain byte duplex for the marker-framed shell, verified uploads (SFTP
 * or streamed), keepalive-based loss detection, reconnect after reboot, jump hosts.
 *
 * @module
 */
export {
  connect,
  type ConnectOptions,
  endpointLabel,
  type ExecOptions,
  type ExecResult,
  type ShellChannelOptions,
  shellQuote,
  type SshEndpoint,
  SshSession,
  type UploadOptions,
  type UploadResult,
  waitForSsh,
  type WaitOptions,
} from "./client.ts";
export { classifyConnectError, HostKeyError } from "./classify.ts";
export {
  fingerprintOfKeyBlob,
  fingerprintOfPublicKeyLine,
  parseFingerprint,
} from "./fingerprint.ts";
export { type ClientKey, ensureClientKey } from "./keys.ts";
