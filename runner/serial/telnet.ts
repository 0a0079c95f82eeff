/**
 * A TCP console in telnet mode, as ser2net's `telnet` accepter serves a board's UART: the
 * minimal telnet (RFC 854) handling a console needs, on top of the raw TCP console's shape.
 *
 * What ser2net 4.3 (Debian 12) sends on connect, captured here: `IAC WILL SGA`, `IAC DO SGA`,
 * `IAC WILL ECHO`, `IAC DONT ECHO`, `IAC DO BINARY`, `IAC WILL BINARY`; then the device's bytes
 * with every 0xFF doubled (`IAC IAC`). {@linkcode TelnetCodec} agrees to BINARY (RFC 856) and
 * SUPPRESS-GO-AHEAD (RFC 858) both ways and to the server's ECHO (RFC 857), refuses every other
 * option, drops commands (NOP, GA, ...) and subnegotiations (RFC 2217 COM-PORT-OPTION
 * included), undoubles `IAC IAC`, and doubles 0xFF in what it sends. Until BINARY is agreed, a
 * received `CR NUL` is a bare CR and a sent bare CR becomes `CR NUL` (NVT rules). State
 * carries across chunks, so a command split between two TCP reads is still a command.
 *
 * @module
 */

import { TcpConsole, type TcpConsoleOptions } from "./port.ts";

/** Telnet command bytes (RFC 854). */
export const TELNET = {
  IAC: 255,
  DONT: 254,
  DO: 253,
  WONT: 252,
  WILL: 251,
  SB: 250,
  SE: 240,
} as const;

/** Telnet options rkhil agrees to. */
export const TELNET_OPTION = { BINARY: 0, ECHO: 1, SGA: 3 } as const;

/** Longest subnegotiation kept before it is given up (its bytes then count as data). */
export const MAX_SUBNEGOTIATION = 4096;

/** Options rkhil will enable on its side (`WILL`). */
const LOCAL_OK = new Set<number>([TELNET_OPTION.BINARY, TELNET_OPTION.SGA]);
/** Options rkhil lets the server enable (`DO`). */
const REMOTE_OK = new Set<number>([TELNET_OPTION.BINARY, TELNET_OPTION.SGA, TELNET_OPTION.ECHO]);

type State = "data" | "iac" | "opt" | "sb" | "sb-iac";

/** What {@linkcode TelnetCodec.decode} made of one received chunk. */
export interface TelnetDecoded {
  /** The console bytes (commands removed, `IAC IAC` undoubled). */
  data: Uint8Array;
  /** Negotiation answers to send to the server, already encoded (may be empty). */
  replies: Uint8Array;
}

/** The telnet state machine of one connection (see the module documentation). */
export class TelnetCodec {
  #state: State = "data";
  #cmd = 0;
  #sbLen = 0;
  #afterCr = false;
  /** Options enabled on our side / the server's side. */
  readonly local: Set<number> = new Set();
  /** Options the server has enabled on its side. */
  readonly remote: Set<number> = new Set();
  /** Subnegotiations given up because they exceeded {@linkcode MAX_SUBNEGOTIATION}. */
  oversizedSubnegotiations = 0;
  /** Commands (other than negotiation) and subnegotiations dropped. */
  commandsDropped = 0;

  /** Our opening offer: `IAC WILL BINARY`, `IAC DO BINARY`, `IAC DO SGA`, `IAC WILL SGA`. */
  offer(): Uint8Array {
    const out: number[] = [];
    for (const opt of [TELNET_OPTION.BINARY, TELNET_OPTION.SGA]) {
      out.push(TELNET.IAC, TELNET.WILL, opt, TELNET.IAC, TELNET.DO, opt);
      this.#pendingLocal.add(opt);
      this.#pendingRemote.add(opt);
    }
    return new Uint8Array(out);
  }

  #pendingLocal = new Set<number>();
  #pendingRemote = new Set<number>();

  #negotiate(cmd: number, opt: number, replies: number[]): void {
    const answer = (c: number): void => {
      replies.push(TELNET.IAC, c, opt);
    };
    if (cmd === TELNET.WILL) {
      if (!REMOTE_OK.has(opt)) return answer(TELNET.DONT);
      if (!this.remote.has(opt)) {
        this.remote.add(opt);
        if (!this.#pendingRemote.has(opt)) answer(TELNET.DO);
      }
      this.#pendingRemote.delete(opt);
    } else if (cmd === TELNET.WONT) {
      const asked = this.#pendingRemote.delete(opt);
      if (this.remote.delete(opt) && !asked) answer(TELNET.DONT);
    } else if (cmd === TELNET.DO) {
      if (!LOCAL_OK.has(opt)) return answer(TELNET.WONT);
      if (!this.local.has(opt)) {
        this.local.add(opt);
        if (!this.#pendingLocal.has(opt)) answer(TELNET.WILL);
      }
      this.#pendingLocal.delete(opt);
    } else if (cmd === TELNET.DONT) {
      const asked = this.#pendingLocal.delete(opt);
      if (this.local.delete(opt) && !asked) answer(TELNET.WONT);
    }
  }

  /** Decode one received chunk. Never throws, whatever the bytes. */
  decode(chunk: Uint8Array): TelnetDecoded {
    const data: number[] = [];
    const replies: number[] = [];
    for (const b of chunk) {
      switch (this.#state) {
        case "data":
          if (b === TELNET.IAC) {
            this.#state = "iac";
            break;
          }
          if (this.#afterCr && b === 0 && !this.remote.has(TELNET_OPTION.BINARY)) {
            this.#afterCr = false;
            break; // CR NUL is a bare CR
          }
          this.#afterCr = b === 13;
          data.push(b);
          break;
        case "iac":
          this.#afterCr = false;
          if (b === TELNET.IAC) {
            data.push(0xff);
            this.#state = "data";
          } else if (b >= TELNET.WILL && b <= TELNET.DONT) {
            this.#cmd = b;
            this.#state = "opt";
          } else if (b === TELNET.SB) {
            this.#sbLen = 0;
            this.#state = "sb";
          } else {
            this.commandsDropped++;
            this.#state = "data";
          }
          break;
        case "opt":
          this.#negotiate(this.#cmd, b, replies);
          this.#state = "data";
          break;
        case "sb":
        case "sb-iac":
          if (this.#state === "sb-iac") {
            if (b === TELNET.SE) {
              this.commandsDropped++;
              this.#state = "data";
              break;
            }
            this.#state = "sb"; // IAC IAC inside a subnegotiation, or a stray IAC
          } else if (b === TELNET.IAC) {
            this.#state = "sb-iac";
            break;
          }
          if (++this.#sbLen > MAX_SUBNEGOTIATION) {
            // A server that never ends its subnegotiation would swallow the console: give up
            // on it and read on as data.
            this.oversizedSubnegotiations++;
            this.#state = "data";
          }
          break;
      }
    }
    return { data: new Uint8Array(data), replies: new Uint8Array(replies) };
  }

  /** Encode bytes to send: 0xFF doubled; a bare CR sent as `CR NUL` until BINARY is agreed. */
  encode(data: Uint8Array): Uint8Array {
    const binary = this.local.has(TELNET_OPTION.BINARY);
    const out: number[] = [];
    for (let i = 0; i < data.length; i++) {
      const b = data[i];
      out.push(b);
      if (b === 0xff) out.push(0xff);
      else if (b === 13 && !binary && data[i + 1] !== 10) out.push(0);
    }
    return new Uint8Array(out);
  }
}

/**
 * A TCP console speaking telnet (ser2net's `telnet` accepter). Received bytes are decoded by a
 * {@linkcode TelnetCodec} before capture and listeners; negotiation answers go straight to the
 * server (never into the capture log's `tx` events).
 */
export class TelnetConsole extends TcpConsole {
  #codec: TelnetCodec;

  private constructor(conn: Deno.TcpConn, opts: TcpConsoleOptions, codec: TelnetCodec) {
    super(conn, opts, "telnet", `telnet://${opts.host}:${opts.port}`);
    this.#codec = codec;
    this.send(codec.offer()).catch(() => {});
  }

  /** The connection's telnet state (options agreed, commands dropped). */
  get codec(): TelnetCodec {
    return this.#codec;
  }

  /**
   * Connect to `host:port` within `connectTimeoutMs` (default 5000 ms).
   *
   * @throws {TimeoutError} when the connect takes longer.
   * @throws {InfraError} when the connection is refused or fails.
   */
  static override async open(opts: TcpConsoleOptions): Promise<TelnetConsole> {
    const hint =
      `check that the console server (ser2net, telnet accepter) on ${opts.host}:${opts.port} is up`;
    const conn = await TcpConsole.connect(opts, "telnet", hint);
    return new TelnetConsole(conn, opts, new TelnetCodec());
  }

  /** Decode a received chunk: console bytes delivered, negotiation answered. */
  protected override receive(chunk: Uint8Array): void {
    const { data, replies } = this.#codec.decode(chunk);
    if (replies.length > 0) this.send(replies).catch(() => {});
    if (data.length > 0) this.deliver(data);
  }

  /** Telnet-encode what is written (0xFF doubled; bare CR as NVT until BINARY). */
  protected override encode(data: Uint8Array): Uint8Array {
    return this.#codec.encode(data);
  }
}

/** Opens a telnet TCP console (see {@linkcode TelnetConsole}). */
export function openTelnetConsole(opts: TcpConsoleOptions): Promise<TelnetConsole> {
  return TelnetConsole.open(opts);
}
