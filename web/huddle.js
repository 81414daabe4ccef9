// huddle's web client: join a room, publish camera and microphone, watch
// everyone else. It speaks the signalling protocol of docs/protocol.md and
// nothing else, so it doubles as the reference client for browsers:
//
//   Signal  one WebSocket; requests carry ids and get one reply or error each;
//           events are pushed (protocol.md §2).
//   Room    what we know of the room (users, streams), our publish link and one
//           subscription link per stream we watch; one RTCPeerConnection each,
//           non-trickle ICE (complete SDPs), H.264 + Opus.
//   UI      the form, the grid of tiles (one per stream), the stats lines.
//
// When the WebSocket drops, the room goes RECONNECTING and takes its session
// back with the `resumeToken` of `joined` (protocol.md §3a): links, streams
// and subscriptions carry on; if the server no longer knows the token (it
// restarted, or the window ran out) it joins again and publishes and
// subscribes again.
//
// `window.huddle.summary()` returns the room and every tile's media counters
// as plain JSON: what the tiles show, for scripts and tests.
//
// Kiosk (`?kiosk=1`, protocol.md §3c): the page shows the room's program
// (single, side by side, 2x2) from `joined.program` and `program-changed`,
// cut once the new sources have a frame, and receives only the on-air
// streams (everything off air), as the app's kiosk does.
'use strict';

(() => {
  const PROTOCOL_VERSION = 1;
  /** The server closes a connection idle for 30 s; the SDK pings every 5 s. */
  const PING_INTERVAL_MS = 5000;
  /** A request without a reply this long fails with the seed's 90000004. */
  const REQUEST_TIMEOUT_MS = 15000;
  /** Non-trickle: the offer/answer goes out once gathering completes, or after this. */
  const GATHERING_TIMEOUT_MS = 5000;
  const STATS_INTERVAL_MS = 1000;
  /** Reconnection (protocol.md §3a), as the SDK does it: the first try at once,
   *  then after 250 ms, doubling up to 2 s, for the server's resume window. */
  const RECONNECT_FIRST_MS = 250;
  const RECONNECT_MAX_MS = 2000;
  const RECONNECT_WINDOW_MS = 30000;
  /** The server no longer knows the resume token: join again. */
  const TOKEN_UNKNOWN = 90100013;
  /** Redirects one join follows (nodes of a cluster, protocol.md "Several nodes"). */
  const MAX_REDIRECTS = 3;
  const ROLE_JOINER = 0;
  const ROLE_PLAYER = 2;

  /** Seed 001 Table 3-6: why a user left or was removed. */
  const LEAVE_REASONS = {
    0: 'left', 1: 'server exception', 2: 'kicked', 3: 'service unavailable (server shutting down)',
    4: 'network error', 5: 'replaced by another connection of the same user', 6: 'room dismissed',
    7: 'connection lost', 8: 'signature expired', 9: 'role changed', 10: 'other',
  };

  /** Error codes this client explains (protocol.md §7); others show their message. */
  const ERROR_HINTS = {
    90000004: 'no reply from the server in time',
    90000005: 'invalid parameter',
    90100001: 'not allowed now',
    90100022: 'players cannot publish',
    90100030: 'the signature has expired: get a new one',
    90100031: 'the signature is not valid for this app, room and user',
    90100108: 'too many requests',
    90100204: 'already joined',
    90100205: 'the server has no room for another room',
    90100214: 'the server cannot use this publish offer',
    90100217: 'the room is full',
    90100226: 'a media connection failed',
    90100240: 'protocol version not supported',
  };

  /** getUserMedia's failures as the seed numbers them (Table 3-13). */
  const CAPTURE_ERRORS = {
    NotAllowedError: 90100017, OverconstrainedError: 90100018, NotFoundError: 90100019,
    NotReadableError: 90100020,
  };

  /** A numbered error: from the server, or one of the seed's client codes. */
  class HuddleError extends Error {
    constructor(code, message) {
      super(message);
      this.code = code;
    }
    toString() {
      if (!this.code) return this.message;
      const hint = ERROR_HINTS[this.code];
      return `${this.code}${hint ? ` (${hint})` : ''}: ${this.message}`;
    }
  }

  // ---------------------------------------------------------------- Signal

  /** One signalling WebSocket (protocol.md §1-2). */
  class Signal {
    constructor(url, onEvent, onError, onClose) {
      this.url = url;
      this.onEvent = onEvent;
      this.onError = onError;
      this.onClose = onClose;
      this.nextId = 1;
      /** id -> {resolve, reject, timer} */
      this.pending = new Map();
      this.ws = null;
      this.pinger = null;
    }

    open() {
      return new Promise((resolve, reject) => {
        let ws;
        try {
          ws = new WebSocket(this.url);
        } catch (e) {
          reject(new HuddleError(90100016, `cannot open ${this.url}: ${e.message}`));
          return;
        }
        this.ws = ws;
        ws.onopen = () => {
          this.pinger = setInterval(() => this.request('ping').catch(() => {}), PING_INTERVAL_MS);
          resolve();
        };
        ws.onerror = () => reject(new HuddleError(90100016, `cannot connect to ${this.url}`));
        ws.onmessage = (e) => this.receive(e.data);
        ws.onclose = (e) => {
          clearInterval(this.pinger);
          for (const { reject: fail, timer } of this.pending.values()) {
            clearTimeout(timer);
            fail(new HuddleError(90100016, 'the connection closed'));
          }
          this.pending.clear();
          this.onClose(e);
        };
      });
    }

    /** Sends one request; resolves with its reply, rejects with a HuddleError. */
    request(type, fields = {}) {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        return Promise.reject(new HuddleError(90100016, 'not connected'));
      }
      const id = this.nextId++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new HuddleError(90000004, `no reply to ${type} within ${REQUEST_TIMEOUT_MS} ms`));
        }, REQUEST_TIMEOUT_MS);
        this.pending.set(id, { resolve, reject, timer });
        this.ws.send(JSON.stringify({ id, type, ...fields }));
      });
    }

    receive(text) {
      let message;
      try {
        message = JSON.parse(text);
      } catch {
        return; // the server sends JSON only; nothing to answer
      }
      if (message.type === 'event') {
        this.onEvent(message.event);
        return;
      }
      const waiting = message.id != null ? this.pending.get(message.id) : undefined;
      if (!waiting) {
        // An error that answers no request (90100226), or a late reply.
        if (message.type === 'error') this.onError(new HuddleError(message.code, message.message));
        return;
      }
      this.pending.delete(message.id);
      clearTimeout(waiting.timer);
      if (message.type === 'error') {
        waiting.reject(new HuddleError(message.code, message.message));
      } else {
        waiting.resolve(message);
      }
    }

    close() {
      clearInterval(this.pinger);
      if (this.ws) this.ws.close();
    }
  }

  // ---------------------------------------------------------------- media helpers

  /** Resolves once `pc` has gathered its candidates (or after the timeout). */
  function gathered(pc) {
    return new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') {
        resolve();
        return;
      }
      const done = () => {
        clearTimeout(timer);
        pc.removeEventListener('icegatheringstatechange', check);
        resolve();
      };
      const check = () => {
        if (pc.iceGatheringState === 'complete') done();
      };
      const timer = setTimeout(done, GATHERING_TIMEOUT_MS);
      pc.addEventListener('icegatheringstatechange', check);
    });
  }

  /** Whether an RTCRtpCodec is H.264 that the server forwards: packetization
   *  mode 1, constrained baseline (profile-level-id 42e0xx). */
  function serverH264(codec) {
    const fmtp = (codec.sdpFmtpLine || '').toLowerCase();
    return codec.mimeType.toLowerCase() === 'video/h264'
      && /packetization-mode=1/.test(fmtp)
      && /profile-level-id=42e0/.test(fmtp);
  }

  /** The browser's video codecs for sending, the server's H.264 first, then
   *  other H.264, then the rest; empty when the browser has no H.264 at all. */
  function h264First() {
    const codecs = (window.RTCRtpSender && RTCRtpSender.getCapabilities
      && RTCRtpSender.getCapabilities('video')?.codecs) || [];
    const isH264 = (c) => c.mimeType.toLowerCase() === 'video/h264';
    if (!codecs.some(serverH264)) return [];
    return [
      ...codecs.filter(serverH264),
      ...codecs.filter((c) => isH264(c) && !serverH264(c)),
      ...codecs.filter((c) => !isH264(c)),
    ];
  }

  /** Whether the browser can decode H.264 (others' video). */
  function canReceiveH264() {
    const codecs = (window.RTCRtpReceiver && RTCRtpReceiver.getCapabilities
      && RTCRtpReceiver.getCapabilities('video')?.codecs) || [];
    return codecs.some((c) => c.mimeType.toLowerCase() === 'video/h264');
  }

  /** The signature endpoint next to a signalling URL: ws(s)://h/ws -> http(s)://h/signature. */
  function signatureUrl(serverUrl, app, room, user) {
    const url = new URL(serverUrl);
    url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
    url.pathname = '/signature';
    url.search = new URLSearchParams({ appid: app, roomid: room, userid: user }).toString();
    return url.toString();
  }

  /** A signature from GET /signature (protocol.md §9), with the token if one is given. */
  async function fetchSignature(serverUrl, app, room, user, token) {
    const headers = token ? { 'X-AUTH-TOKEN': token } : {};
    let response;
    try {
      response = await fetch(signatureUrl(serverUrl, app, room, user), { headers, cache: 'no-store' });
    } catch (e) {
      throw new HuddleError(90100016, `cannot reach the signature server: ${e.message}`);
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new HuddleError(body.code || 90000005, body.message || `GET /signature: HTTP ${response.status}`);
    }
    return { signature: body.signature, ctime: body.ctime };
  }

  /** Counters of one peer connection's media, and rates since the last call. */
  class StatsReader {
    constructor() {
      this.last = new Map(); // report id -> {timestamp, bytes, packets, lost}
    }

    async read(pc) {
      const report = await pc.getStats();
      const out = {};
      report.forEach((s) => {
        if (s.type !== 'inbound-rtp' && s.type !== 'outbound-rtp') return;
        const kind = s.kind || s.mediaType;
        const inbound = s.type === 'inbound-rtp';
        const bytes = inbound ? s.bytesReceived : s.bytesSent;
        const packets = inbound ? s.packetsReceived : s.packetsSent;
        const lost = inbound ? s.packetsLost || 0 : 0;
        const prev = this.last.get(s.id);
        this.last.set(s.id, { timestamp: s.timestamp, bytes, packets, lost });
        const codec = s.codecId && report.get(s.codecId);
        const m = {
          codec: codec ? codec.mimeType.split('/')[1] : null,
          packets: packets || 0,
          packetsLost: lost,
          bytes: bytes || 0,
          kbps: 0,
          lossPercent: 0,
        };
        if (prev && s.timestamp > prev.timestamp) {
          m.kbps = Math.round(((bytes - prev.bytes) * 8) / (s.timestamp - prev.timestamp));
          const got = packets - prev.packets;
          const missed = lost - prev.lost;
          m.lossPercent = got + missed > 0 ? Math.max(0, (100 * missed) / (got + missed)) : 0;
        }
        if (kind === 'video') {
          Object.assign(m, {
            frames: (inbound ? s.framesDecoded : s.framesEncoded) || 0,
            fps: Math.round(s.framesPerSecond || 0),
            width: s.frameWidth || 0,
            height: s.frameHeight || 0,
          });
        } else if (inbound) {
          Object.assign(m, {
            totalAudioEnergy: s.totalAudioEnergy || 0,
            audioLevel: s.audioLevel || 0,
            totalSamplesReceived: s.totalSamplesReceived || 0,
          });
        }
        if (!inbound) {
          // What the server saw of our packets (RTCP receiver reports).
          report.forEach((r) => {
            if (r.type === 'remote-inbound-rtp' && r.localId === s.id && r.fractionLost != null) {
              m.lossPercent = 100 * r.fractionLost;
            }
          });
        }
        if (!inbound && kind === 'video' && s.rid) {
          // Simulcast: one outbound-rtp per layer; the tile shows the largest.
          (out.layers = out.layers || []).push({ rid: s.rid, ...m });
          if (out.video && out.video.width >= m.width) return;
        }
        out[kind] = m;
      });
      if (out.layers) out.layers.sort((a, b) => b.width - a.width || a.rid.localeCompare(b.rid));
      return out;
    }
  }

  /** The simulcast layers of a camera of `video`'s size (protocol.md §8): the
   *  full size, a half and a quarter, largest first, each named by its height
   *  (`720p`, `360p`, `180p`); a layer under 90 lines is left out. */
  function simulcastLayers(video) {
    const layers = [];
    for (let scale = 1; layers.length < 3; scale *= 2) {
      const width = Math.round(video.width / scale);
      const height = Math.round(video.height / scale);
      if (layers.length > 0 && height < 90) break;
      layers.push({ resolutionId: `${height}p`, width, height, frameRate: video.frameRate });
    }
    return layers;
  }

  /** One line per medium, as a tile shows it. */
  function statsText(media) {
    const lines = [];
    const v = media.video;
    if (v) {
      lines.push(`${v.codec || 'video'} ${v.width}×${v.height} ${v.fps} fps `
        + `${v.kbps} kb/s loss ${v.lossPercent.toFixed(1)}%`);
    }
    const a = media.audio;
    if (a) lines.push(`${a.codec || 'audio'} ${a.kbps} kb/s loss ${a.lossPercent.toFixed(1)}%`);
    return lines.join('\n');
  }

  // ---------------------------------------------------------------- Kiosk

  /** The longest a cut waits for the new sources' first frames (the app's `CUT_DEADLINE`). */
  const CUT_DEADLINE_MS = 2000;
  /** How often a cue looks for those frames. */
  const CUE_POLL_MS = 50;
  const OFF_AIR = Object.freeze({ layout: 'off', streams: [] });

  const isOff = (program) => !program || program.layout === 'off' || !program.streams.length;
  const sameProgram = (a, b) => a.layout === b.layout && a.streams.length === b.streams.length
    && a.streams.every((s, i) => s === b.streams[i]);

  /** What a kiosk shows: the room's program, one cut behind it. When the
   *  director puts new sources on air the old program stays on screen until
   *  every new video has a frame (or CUT_DEADLINE_MS passed); off air cuts at
   *  once. It receives the room's program plus what is on screen, and
   *  everything off air (and, until the first cut, the whole room it shows). */
  class Kiosk {
    constructor() {
      this.shown = OFF_AIR;
      /** null (steady) or {program, since}: a cut waiting for first frames. */
      this.cue = null;
    }

    wants(streamId, room) {
      return isOff(room) || room.streams.includes(streamId) || this.shown.streams.includes(streamId);
    }

    /** Whether a held stream may be dropped now. */
    drops(streamId, room) {
      return !isOff(this.shown) && !this.wants(streamId, room);
    }

    /** Follows `room`; `ready(id)` says whether a stream has a frame to show.
     *  Returns whether what is shown changed. */
    update(room, ready, now) {
      if (sameProgram(room, this.shown)) {
        this.cue = null;
        return false;
      }
      const since = this.cue && sameProgram(this.cue.program, room) ? this.cue.since : now;
      if (isOff(room) || room.streams.every(ready) || now - since >= CUT_DEADLINE_MS) {
        this.shown = room;
        this.cue = null;
        return true;
      }
      this.cue = { program: room, since };
      return false;
    }
  }

  // ---------------------------------------------------------------- Room

  /** Where the room stands: one state at a time, with what it owns. */
  const State = Object.freeze({
    IDLE: 'idle', CONNECTING: 'connecting', JOINED: 'joined', RECONNECTING: 'reconnecting',
    LEAVING: 'leaving', LEFT: 'left',
  });

  class Room {
    constructor(ui) {
      this.ui = ui;
      this.state = State.IDLE;
      this.signal = null;
      this.me = null;
      this.users = new Map(); // userId -> UserInfo
      this.streams = new Map(); // streamId -> StreamInfo (others')
      this.links = new Map(); // linkId -> RTCPeerConnection (ours, for candidate events)
      this.subscriptions = new Map(); // streamId -> {pc, linkId, media, stats}
      this.local = null; // {streamId, linkId, pc, media, stats, audioMuted, videoMuted}
      this.subscribeAll = true;
      /** The room's program (protocol.md §3c), and a Kiosk on a kiosk page. */
      this.program = OFF_AIR;
      this.kiosk = null;
      this.cueTimer = null;
      this.credential = null;
      this.camera = 'none';
      this.mic = 'none';
      this.simulcast = false;
      this.errors = [];
      /** What `join` sent (for `resume` and a join again) and its token. */
      this.form = null;
      this.resumeToken = '';
      /** How often the WebSocket was lost, and how often joining again was needed. */
      this.reconnects = 0;
      this.rejoins = 0;
    }

    setState(state, text) {
      this.state = state;
      this.ui.status(text || state);
      this.ui.joinedChanged(this);
    }

    fail(error) {
      const e = error instanceof HuddleError ? error : new HuddleError(0, String(error.message || error));
      this.errors.push({ code: e.code, message: e.message });
      this.ui.error(e.toString());
    }

    /** Connects, joins, publishes what the pickers say, subscribes to everyone. */
    async join(form) {
      this.subscribeAll = form.subscribeAll;
      if (form.kiosk) this.kiosk = new Kiosk();
      this.setState(State.CONNECTING, 'connecting…');
      let credential;
      if (form.pasted) {
        credential = { signature: form.signature.trim(), ctime: Number(form.ctime) };
      } else {
        credential = await fetchSignature(form.server, form.app, form.room, form.user, form.token);
      }
      this.form = form;
      this.nodeUrls = [form.server];
      this.nodeIndex = 0;
      this.signal = this.newSignal();
      await this.signal.open();
      const joined = await this.joinFollowing({
        protocolVersion: PROTOCOL_VERSION,
        appId: form.app,
        roomId: form.room,
        userId: form.user,
        userName: form.name,
        role: form.role,
        ctime: credential.ctime,
        signature: credential.signature,
      });
      // The signature covers app, room, user and expiry, not the role: a
      // role switch sends it again (protocol.md §3, "Roles and names").
      this.credential = credential;
      this.resumeToken = joined.resumeToken || '';
      this.camera = form.camera;
      this.mic = form.mic;
      this.simulcast = form.simulcast;
      this.me = joined.me;
      this.program = joined.program || OFF_AIR;
      for (const user of joined.users) this.users.set(user.userId, user);
      this.setState(State.JOINED, `in room ${joined.roomId} as ${this.me.userId} (${joined.server})`);
      for (const stream of joined.streams) this.addStream(stream);
      this.followProgram();
      if (this.me.role === ROLE_JOINER && (form.camera !== 'none' || form.mic !== 'none')) {
        // A refused camera or publish leaves us in the room, watching.
        await this.publish(form.camera, form.mic).catch((e) => {
          this.fail(e);
          this.unpublished();
        });
      }
    }

    /** Sends `join` on `this.signal`; while the answer is `redirect` (the
     *  room lives on another node of a cluster, protocol.md "Several
     *  nodes"), joins at the URL it names instead. Remembers the node joined
     *  first and the cluster's other nodes (`nodes`) for reconnecting. */
    async joinFollowing(fields) {
      for (let hops = 0; hops <= MAX_REDIRECTS; hops += 1) {
        const reply = await this.signal.request('join', fields);
        if (reply.result !== 'redirect') {
          // Nodes known before stay: one down when this list was made may
          // be back by the next drop.
          const here = this.signal.url;
          this.nodeUrls = [here, ...[this.form.server, ...(reply.nodes || []), ...(this.nodeUrls || [])]
            .filter((u, i, all) => u !== here && all.indexOf(u) === i)];
          this.nodeIndex = 0;
          return reply;
        }
        const old = this.signal;
        this.signal = this.newSignal(reply.url);
        old.close();
        await this.signal.open();
      }
      throw new HuddleError(90100203, `redirected more than ${MAX_REDIRECTS} times`);
    }

    /** A signalling connection whose events and close come to this room;
     *  the close of one that has been replaced is ignored. */
    newSignal(url = (this.nodeUrls || [])[this.nodeIndex || 0] || this.form.server) {
      const signal = new Signal(
        url,
        (event) => this.onEvent(event),
        (error) => this.fail(error),
        () => {
          if (this.signal === signal) this.onClosed();
        },
      );
      return signal;
    }

    /** The WebSocket dropped while joined: RECONNECTING, then `resume` with
     *  backoff within the window (protocol.md §3a); DISCONNECTED after it. */
    async reconnect() {
      this.reconnects += 1;
      this.setState(State.RECONNECTING, 'RECONNECTING: the connection to the server was lost; resuming…');
      const deadline = Date.now() + RECONNECT_WINDOW_MS;
      let delay = 0;
      for (;;) {
        if (delay) await new Promise((resolve) => { setTimeout(resolve, delay); });
        if (this.state !== State.RECONNECTING) return; // left meanwhile
        if (Date.now() > deadline) {
          this.teardown(`disconnected: ${LEAVE_REASONS[7]} (reconnection timed out)`);
          return;
        }
        try {
          await this.resumeOnce();
          return;
        } catch (e) {
          if (this.state !== State.RECONNECTING) return;
          this.ui.status(`RECONNECTING: ${e.message}; trying again…`);
        }
        delay = delay ? Math.min(delay * 2, RECONNECT_MAX_MS) : RECONNECT_FIRST_MS;
      }
    }

    /** One attempt: a new WebSocket, `resume`; a token the server does not
     *  know means joining again on the same connection. */
    async resumeOnce() {
      const signal = this.newSignal();
      this.signal = signal;
      try {
        await signal.open();
      } catch (e) {
        // That node is gone: the next attempt tries the cluster's next one.
        this.nodeIndex = ((this.nodeIndex || 0) + 1) % this.nodeUrls.length;
        throw e;
      }
      let reply;
      try {
        reply = await signal.request('resume', {
          appId: this.form.app,
          roomId: this.form.room,
          userId: this.form.user,
          resumeToken: this.resumeToken,
        });
      } catch (e) {
        if (e.code === TOKEN_UNKNOWN) {
          await this.rejoin(signal);
          return;
        }
        signal.close();
        throw e;
      }
      this.resumed(reply);
    }

    /** The session is back as it was: diff the room as it is now against
     *  what we knew; set up again what the server dropped meanwhile. */
    resumed(reply) {
      this.me = reply.me;
      this.program = reply.program || OFF_AIR;
      this.users = new Map(reply.users.map((u) => [u.userId, u]));
      this.setState(State.JOINED, `in room ${reply.roomId} as ${this.me.userId} (resumed)`);
      const now = new Map(reply.streams
        .filter((s) => s.userId !== this.me.userId)
        .map((s) => [s.streamId, s]));
      for (const streamId of [...this.streams.keys()]) {
        if (!now.has(streamId)) {
          this.streams.delete(streamId);
          this.unsubscribed(streamId);
          this.ui.removeTile(streamId);
        }
      }
      const subscribed = new Set(reply.subscriptions);
      for (const [streamId, stream] of now) {
        if (!this.streams.has(streamId)) {
          this.addStream(stream);
        } else {
          this.streams.set(streamId, stream);
          if (this.subscriptions.has(streamId) && !subscribed.has(streamId)) {
            // Its link failed while we were away: watch again.
            this.unsubscribed(streamId);
            this.watch(streamId);
          }
        }
      }
      if (this.local && this.local.streamId != null
        && !reply.publications.includes(this.local.streamId)) {
        this.unpublished();
        this.republish();
      }
      this.followProgram();
      this.ui.refresh(this);
    }

    /** The server forgot us (restart, window over): join again on `signal`,
     *  then publish and subscribe again (new stream ids). */
    async rejoin(signal) {
      this.signal = signal;
      const joined = await this.joinFollowing({
        protocolVersion: PROTOCOL_VERSION,
        appId: this.form.app,
        roomId: this.form.room,
        userId: this.form.user,
        userName: this.me.userName,
        role: this.me.role,
        ctime: this.credential.ctime,
        signature: this.credential.signature,
      });
      this.rejoins += 1;
      this.resumeToken = joined.resumeToken || '';
      this.me = joined.me;
      this.program = joined.program || OFF_AIR;
      this.users = new Map(joined.users.map((u) => [u.userId, u]));
      for (const streamId of [...this.streams.keys()]) {
        this.unsubscribed(streamId);
        this.ui.removeTile(streamId);
      }
      this.streams.clear();
      this.links.clear();
      const hadLocal = Boolean(this.local);
      this.unpublished();
      this.setState(State.JOINED, `in room ${joined.roomId} as ${this.me.userId} (joined again)`);
      for (const stream of joined.streams) this.addStream(stream);
      this.followProgram();
      if (hadLocal) this.republish();
    }

    /** Publishes what the pickers said again (after the server lost it). */
    republish() {
      if (this.me.role !== ROLE_JOINER || (this.camera === 'none' && this.mic === 'none')) return;
      this.publish(this.camera, this.mic).catch((e) => {
        this.fail(e);
        this.unpublished();
      });
    }

    /** `change-user-name`: the others see the new name. */
    async rename(userName) {
      await this.signal.request('change-user-name', { userName });
      this.me.userName = userName;
      this.ui.renamed(this);
    }

    /** `switch-role` with the join's signature: to player unpublishes our
     *  stream (the server closes its link), back to joiner publishes again. */
    async switchRole(role) {
      const reply = await this.signal.request('switch-role', {
        role, ctime: this.credential.ctime, signature: this.credential.signature,
      });
      this.me.role = reply.role;
      if (reply.role === ROLE_PLAYER) this.unpublished();
      this.ui.joinedChanged(this);
      if (reply.role === ROLE_JOINER && !this.local
        && (this.camera !== 'none' || this.mic !== 'none')) {
        await this.publish(this.camera, this.mic).catch((e) => {
          this.fail(e);
          this.unpublished();
        });
      }
    }

    /** Drops our publication (after a failure), keeping the room. */
    unpublished() {
      if (!this.local) return;
      if (this.local.linkId != null) this.links.delete(this.local.linkId);
      this.local.pc.close();
      this.local.media.getTracks().forEach((t) => t.stop());
      this.local = null;
      this.ui.removeTile('local');
      this.ui.localChanged(this);
    }

    /** getUserMedia, then `publish` with H.264 offered first (protocol.md §3.3). */
    async publish(camera, mic) {
      const codecs = h264First();
      let wantVideo = camera !== 'none';
      if (wantVideo && codecs.length === 0) {
        this.ui.notice('This browser cannot send H.264 video, the only video codec huddle\'s '
          + 'server forwards: your camera is not published (the microphone is).');
        wantVideo = false;
      }
      const wantAudio = mic !== 'none';
      if (!wantVideo && !wantAudio) return;
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        this.ui.notice('Camera and microphone need a secure page: open this server over '
          + 'https:// (huddle serve --tls-cert/--tls-key) or on localhost. You can still watch.');
        return;
      }
      const pick = (id) => (id ? { deviceId: { exact: id } } : true);
      // Simulcast asks the camera for 720p, so that its halves are worth sending.
      const pickVideo = (id) => (this.simulcast
        ? { ...(id ? { deviceId: { exact: id } } : {}), width: { ideal: 1280 }, height: { ideal: 720 } }
        : pick(id));
      let media;
      try {
        media = await navigator.mediaDevices.getUserMedia({
          video: wantVideo ? pickVideo(camera) : false,
          audio: wantAudio ? pick(mic) : false,
        });
      } catch (e) {
        throw new HuddleError(CAPTURE_ERRORS[e.name] || 90100003, `camera/microphone: ${e.name}: ${e.message}`);
      }
      this.ui.devicesChanged();
      const pc = new RTCPeerConnection({ iceServers: [] });
      const videoTrack = media.getVideoTracks()[0];
      const audioTrack = media.getAudioTracks()[0];
      let video = null;
      let layers = null;
      if (videoTrack) {
        const s = videoTrack.getSettings();
        video = {
          width: s.width || 640,
          height: s.height || 480,
          frameRate: Math.min(120, Math.max(1, Math.round(s.frameRate || 30))),
        };
        if (this.simulcast) layers = simulcastLayers(video);
      }
      // Video first, as the SDK does; each section send-only. Simulcast
      // (protocol.md §8): one section, an encoding per layer whose rid is the
      // layer's resolutionId.
      if (videoTrack) {
        const init = { direction: 'sendonly', streams: [media] };
        if (layers) {
          init.sendEncodings = layers.map((l) => ({
            rid: l.resolutionId, scaleResolutionDownBy: video.width / l.width,
          }));
        }
        const t = pc.addTransceiver(videoTrack, init);
        try {
          t.setCodecPreferences(codecs);
        } catch {
          // An older browser without preferences: its offer still lists H.264,
          // and the server answers with it.
        }
      }
      if (audioTrack) pc.addTransceiver(audioTrack, { direction: 'sendonly', streams: [media] });
      this.local = {
        streamId: null, linkId: null, pc, media, stats: new StatsReader(), last: {},
        audioMuted: false, videoMuted: false,
      };
      this.ui.addLocalTile(this);
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      const request = { audio: Boolean(audioTrack), video, sdp: pc.localDescription.sdp };
      if (layers) {
        request.resolutions = layers.map(({ resolutionId, width, height, frameRate }) => ({
          resolutionId, width, height, frameRate,
        }));
      }
      const published = await this.signal.request('publish', request);
      if (!this.local || this.local.pc !== pc) return; // left meanwhile
      this.local.streamId = published.streamId;
      this.local.linkId = published.linkId;
      this.links.set(published.linkId, pc);
      await pc.setRemoteDescription({ type: 'answer', sdp: published.sdp });
      this.ui.localChanged(this);
    }

    /** `layers-wanted` (protocol.md §8): our simulcast layers nobody watches
     *  are not encoded (`active: false`), as the SDK does; the largest is
     *  always wanted. */
    async encodeWanted(streamId, wanted) {
      const local = this.local;
      if (!local || local.streamId !== streamId) return;
      const sender = local.pc.getSenders().find((s) => s.track && s.track.kind === 'video');
      if (!sender) return;
      const params = sender.getParameters();
      if (!params.encodings || params.encodings.length < 2) return;
      let changed = false;
      for (const encoding of params.encodings) {
        const active = wanted.includes(encoding.rid);
        if (encoding.rid && encoding.active !== active) {
          encoding.active = active;
          changed = true;
        }
      }
      if (changed) await sender.setParameters(params);
      local.wanted = wanted;
    }

    /** Mutes our microphone or camera: the track sends silence / black, and the
     *  others are told (`update-stream`). */
    async setMuted(kind, muted) {
      const local = this.local;
      if (!local || local.streamId == null) return;
      const track = kind === 'audio' ? local.media.getAudioTracks()[0] : local.media.getVideoTracks()[0];
      if (!track) return;
      track.enabled = !muted;
      if (kind === 'audio') local.audioMuted = muted; else local.videoMuted = muted;
      this.ui.localChanged(this);
      await this.signal.request('update-stream', {
        streamId: local.streamId, audioMuted: local.audioMuted, videoMuted: local.videoMuted,
      });
    }

    addStream(stream) {
      this.streams.set(stream.streamId, stream);
      this.ui.addRemoteTile(this, stream);
      if (this.subscribeAll && this.wants(stream.streamId)) this.watch(stream.streamId);
      if (this.kiosk) this.ui.showProgram(this.kiosk.shown);
    }

    /** Whether a stream is received: all of them, or on a kiosk what is on air. */
    wants(streamId) {
      return !this.kiosk || this.kiosk.wants(streamId, this.program);
    }

    /** A kiosk follows the room's program: the new sources are subscribed
     *  first, the cut waits for their frames, then the old ones are dropped. */
    followProgram() {
      const kiosk = this.kiosk;
      if (!kiosk || this.state !== State.JOINED) return;
      for (const streamId of this.streams.keys()) {
        if (this.wants(streamId) && !this.subscriptions.has(streamId)) this.watch(streamId);
      }
      const ready = (streamId) => {
        const stream = this.streams.get(streamId);
        return Boolean(stream && (!stream.video || this.ui.hasFrame(streamId)));
      };
      if (kiosk.update(this.program, ready, Date.now())) this.ui.showProgram(kiosk.shown);
      for (const streamId of [...this.subscriptions.keys()]) {
        if (kiosk.drops(streamId, this.program)) this.stopWatching(streamId);
      }
      clearTimeout(this.cueTimer);
      this.cueTimer = kiosk.cue ? setTimeout(() => this.followProgram(), CUE_POLL_MS) : null;
    }

    /** `unsubscribe` (protocol.md §3.4) and close our side of the link. */
    stopWatching(streamId) {
      this.unsubscribed(streamId);
      this.ui.subscribing(streamId, null);
      this.signal.request('unsubscribe', { streamId, audio: true, video: true })
        .catch(() => {}); // the stream went away meanwhile: nothing left to stop
    }

    /** Subscribes; a failure is shown and leaves a Watch button to retry. */
    watch(streamId) {
      this.subscribe(streamId).catch((e) => {
        this.fail(e);
        this.unsubscribed(streamId);
        this.ui.canWatch(streamId);
      });
    }

    /** `subscribe`, then answer the server's offer (protocol.md §3.4). */
    async subscribe(streamId) {
      const stream = this.streams.get(streamId);
      if (!stream || this.subscriptions.has(streamId)) return;
      if (stream.video && !canReceiveH264()) {
        this.ui.notice('This browser cannot decode H.264: others\' video stays dark.');
      }
      const sub = { pc: null, linkId: null, media: new MediaStream(), stats: new StatsReader(), last: {} };
      this.subscriptions.set(streamId, sub);
      this.ui.subscribing(streamId, sub.media);
      const offer = await this.signal.request('subscribe', {
        streamId, audio: Boolean(stream.audio), video: Boolean(stream.video),
      });
      if (this.subscriptions.get(streamId) !== sub) return; // removed meanwhile
      const pc = new RTCPeerConnection({ iceServers: [] });
      sub.pc = pc;
      sub.linkId = offer.linkId;
      this.links.set(offer.linkId, pc);
      pc.ontrack = (e) => {
        sub.media.addTrack(e.track);
        this.ui.subscribing(streamId, sub.media);
      };
      pc.onconnectionstatechange = () => {
        this.ui.tileState(streamId, pc.connectionState);
        if (pc.connectionState === 'failed' && this.subscriptions.get(streamId) === sub) {
          // The server drops the link too (90100226); offer to watch again.
          this.unsubscribed(streamId);
          this.ui.canWatch(streamId);
        }
      };
      await pc.setRemoteDescription({ type: 'offer', sdp: offer.sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      await gathered(pc);
      if (this.subscriptions.get(streamId) !== sub) return;
      await this.signal.request('answer', { linkId: offer.linkId, sdp: pc.localDescription.sdp });
    }

    unsubscribed(streamId) {
      const sub = this.subscriptions.get(streamId);
      if (!sub) return;
      this.subscriptions.delete(streamId);
      if (sub.linkId != null) this.links.delete(sub.linkId);
      if (sub.pc) sub.pc.close();
    }

    onEvent(event) {
      switch (event.type) {
        case 'nodes-changed':
          // More nodes of the cluster to reconnect through (protocol.md §3c).
          for (const url of event.nodes) {
            if (!this.nodeUrls.includes(url)) this.nodeUrls.push(url);
          }
          break;
        case 'peer-join':
          this.users.set(event.user.userId, event.user);
          break;
        case 'peer-leave':
          this.users.delete(event.userId);
          this.ui.notice(`${event.userId} ${LEAVE_REASONS[event.reason] || `left (${event.reason})`}`);
          break;
        case 'stream-added':
          this.addStream(event.stream);
          break;
        case 'stream-removed':
          // The server has closed its side; close ours (protocol.md §6).
          this.streams.delete(event.streamId);
          this.unsubscribed(event.streamId);
          this.ui.removeTile(event.streamId);
          break;
        case 'stream-updated':
          this.streams.set(event.stream.streamId, event.stream);
          break;
        case 'stream-subscribed':
          break;
        case 'layers-wanted':
          this.encodeWanted(event.streamId, event.resolutionIds || []).catch(() => {});
          break;
        case 'program-changed':
          this.program = event.program || OFF_AIR;
          this.followProgram();
          break;
        case 'peer-role-changed': {
          const user = this.users.get(event.userId);
          if (user) user.role = event.role;
          break;
        }
        case 'remote-user-name-changed': {
          const user = this.users.get(event.userId);
          if (user) user.userName = event.userName;
          break;
        }
        case 'client-banned':
          // Removed for good (replaced, expired...): no resume. A server
          // shutting down (3) may come back: then resume, or join again.
          if (event.reason !== 3) this.resumeToken = '';
          this.fail(new HuddleError(0, `removed from the room: ${LEAVE_REASONS[event.reason] || event.reason}`));
          break;
        case 'candidate': {
          // Repeats of what the SDP carries, for our links; add them anyway.
          const pc = this.links.get(event.linkId);
          if (pc && event.candidate.candidate) {
            pc.addIceCandidate(event.candidate).catch(() => {}); // duplicates are refused: fine
          }
          break;
        }
        default:
          break; // a newer server's event: ignored, as protocol.md allows
      }
      this.ui.refresh(this);
    }

    /** Leaves (the server then closes the socket) and releases everything. */
    async leave() {
      if (this.state !== State.JOINED && this.state !== State.CONNECTING
        && this.state !== State.RECONNECTING) return;
      this.setState(State.LEAVING, 'leaving…');
      try {
        await this.signal.request('leave');
      } catch {
        // Gone already: the server removes us when the socket closes.
      }
      this.teardown('left the room');
    }

    onClosed() {
      if (this.state === State.LEFT || this.state === State.RECONNECTING) return;
      if (this.state === State.JOINED && this.resumeToken) {
        this.reconnect();
        return;
      }
      const expected = this.state === State.LEAVING;
      this.teardown(expected ? 'left the room' : 'disconnected');
    }

    teardown(text) {
      if (this.state === State.LEFT) return;
      if (this.signal) this.signal.close();
      clearTimeout(this.cueTimer);
      for (const streamId of [...this.subscriptions.keys()]) this.unsubscribed(streamId);
      if (this.local) {
        this.local.pc.close();
        this.local.media.getTracks().forEach((t) => t.stop());
        this.local = null;
      }
      this.links.clear();
      this.streams.clear();
      this.users.clear();
      this.setState(State.LEFT, text);
      this.ui.clearTiles();
    }

    /** Reads every link's counters; the tiles and summary() show them. */
    async pollStats() {
      const reads = [];
      if (this.local) {
        const local = this.local;
        reads.push(local.stats.read(local.pc).then((m) => { local.last = m; }));
      }
      for (const sub of this.subscriptions.values()) {
        if (sub.pc) reads.push(sub.stats.read(sub.pc).then((m) => { sub.last = m; }));
      }
      await Promise.allSettled(reads);
      this.ui.refresh(this);
    }

    /** The room and every tile's counters, as plain JSON. */
    summary() {
      const remote = [...this.streams.values()].map((stream) => {
        const sub = this.subscriptions.get(stream.streamId);
        const user = this.users.get(stream.userId);
        return {
          streamId: stream.streamId,
          userId: stream.userId,
          userName: user ? user.userName : '',
          audioMuted: stream.audioMuted,
          videoMuted: stream.videoMuted,
          connectionState: sub && sub.pc ? sub.pc.connectionState : 'new',
          media: sub ? sub.last : {},
        };
      });
      const local = this.local && {
        streamId: this.local.streamId,
        wantedLayers: this.local.wanted || null,
        audioMuted: this.local.audioMuted,
        videoMuted: this.local.videoMuted,
        connectionState: this.local.pc.connectionState,
        media: this.local.last,
      };
      return {
        state: this.state,
        program: this.program,
        kiosk: this.kiosk && {
          shown: this.kiosk.shown,
          cueing: Boolean(this.kiosk.cue),
          subscribed: [...this.subscriptions.keys()],
          visible: this.ui.visibleTiles(),
        },
        reconnects: this.reconnects,
        rejoins: this.rejoins,
        me: this.me,
        users: [...this.users.values()],
        local,
        remote,
        errors: this.errors,
      };
    }
  }

  // ---------------------------------------------------------------- UI

  const $ = (id) => document.getElementById(id);

  class Ui {
    constructor() {
      this.tiles = new Map(); // streamId or 'local' -> {el, video, stats, ...}
    }

    status(text) { $('status').textContent = text; }

    error(text) {
      const el = $('error');
      el.textContent = text;
      el.hidden = !text;
    }

    notice(text) {
      const el = $('notice');
      el.textContent = text;
      el.hidden = !text;
    }

    joinedChanged(room) {
      const inRoom = room.state === State.JOINED || room.state === State.CONNECTING
        || room.state === State.RECONNECTING;
      $('join-form').classList.toggle('joined', inRoom);
      document.body.classList.toggle('in-room', inRoom);
      $('join').disabled = inRoom || room.state === State.LEAVING;
      $('leave').disabled = !inRoom;
      $('in-call').hidden = room.state !== State.JOINED && room.state !== State.RECONNECTING;
      if (room.me) {
        $('switch-role').textContent = room.me.role === ROLE_PLAYER ? 'Publish' : 'Watch only';
      }
      this.localChanged(room);
    }

    renamed(room) {
      const tile = this.tiles.get('local');
      if (tile) tile.name.textContent = `${room.me.userName || room.me.userId} (you)`;
      this.status(`in the room as ${room.me.userName || room.me.userId}`);
    }

    localChanged(room) {
      const local = room.local;
      const can = (kind) => Boolean(local && local.streamId != null
        && local.media[kind === 'audio' ? 'getAudioTracks' : 'getVideoTracks']().length);
      const mic = $('mute-mic');
      const cam = $('mute-camera');
      mic.disabled = !can('audio');
      cam.disabled = !can('video');
      const audioMuted = Boolean(local && local.audioMuted);
      const videoMuted = Boolean(local && local.videoMuted);
      mic.textContent = audioMuted ? 'Unmute mic' : 'Mute mic';
      mic.setAttribute('aria-pressed', String(audioMuted));
      cam.textContent = videoMuted ? 'Start camera' : 'Stop camera';
      cam.setAttribute('aria-pressed', String(videoMuted));
      const tile = this.tiles.get('local');
      if (tile && local) this.badges(tile, audioMuted, videoMuted);
    }

    makeTile(key) {
      const el = $('tile-template').content.firstElementChild.cloneNode(true);
      const tile = {
        el,
        video: el.querySelector('video'),
        name: el.querySelector('.name'),
        stats: el.querySelector('.stats'),
        micOff: el.querySelector('.mic-off'),
        cameraOff: el.querySelector('.camera-off'),
        watch: el.querySelector('.watch'),
        silence: el.querySelector('.silence'),
        screen: el.querySelector('.screen-label'),
      };
      this.tiles.set(key, tile);
      if (key === 'local') $('grid').prepend(el); else $('grid').appendChild(el);
      return tile;
    }

    addLocalTile(room) {
      const tile = this.tiles.get('local') || this.makeTile('local');
      tile.el.classList.add('local');
      tile.el.dataset.streamId = 'local';
      tile.video.muted = true; // no echo of ourselves
      tile.video.srcObject = room.local.media;
      tile.name.textContent = `${room.me.userName || room.me.userId} (you)`;
    }

    addRemoteTile(room, stream) {
      if (this.tiles.has(stream.streamId)) return;
      const tile = this.makeTile(stream.streamId);
      tile.el.dataset.streamId = String(stream.streamId);
      tile.el.dataset.userId = stream.userId;
      // A shared screen is shown whole (`contain`) and labelled as such.
      tile.el.classList.toggle('screen', Boolean(stream.isScreen));
      tile.screen.hidden = !stream.isScreen;
      tile.watch.hidden = room.subscribeAll;
      tile.watch.onclick = () => {
        tile.watch.hidden = true;
        room.watch(stream.streamId);
      };
      tile.silence.hidden = !stream.audio;
      tile.silence.onclick = () => {
        tile.video.muted = !tile.video.muted;
        tile.silence.setAttribute('aria-pressed', String(tile.video.muted));
        tile.silence.textContent = tile.video.muted ? 'Unsilence' : 'Silence';
      };
      this.refresh(room);
    }

    subscribing(streamId, media) {
      const tile = this.tiles.get(streamId);
      if (tile && tile.video.srcObject !== media) tile.video.srcObject = media;
      if (tile && media) tile.video.play().catch(() => {}); // autoplay refused: the Join click usually allows it
    }

    /** Whether a stream's video element has a frame to show. */
    hasFrame(streamId) {
      const tile = this.tiles.get(streamId);
      return Boolean(tile && tile.video.srcObject && tile.video.readyState >= 2
        && tile.video.videoWidth > 0);
    }

    /** Kiosk: lays the grid out as `program` (off: the whole room), its
     *  streams in their places, the others hidden. */
    showProgram(program) {
      const grid = $('grid');
      grid.dataset.layout = isOff(program) ? 'off' : program.layout;
      for (const [key, tile] of this.tiles) {
        const place = program.streams.indexOf(key);
        const offAir = !isOff(program) && place < 0;
        tile.el.classList.toggle('off-air', offAir);
        tile.el.style.order = place < 0 ? '' : String(place);
      }
    }

    /** The tiles on screen, in their places: which stream each video
     *  element plays and how (for scripts and tests). */
    visibleTiles() {
      return [...this.tiles.entries()]
        .filter(([, t]) => t.el.isConnected && getComputedStyle(t.el).display !== 'none')
        .sort(([, a], [, b]) => Number(a.el.style.order || 0) - Number(b.el.style.order || 0))
        .map(([key, t]) => {
          const quality = t.video.getVideoPlaybackQuality ? t.video.getVideoPlaybackQuality() : {};
          return {
            streamId: key,
            videoWidth: t.video.videoWidth,
            videoHeight: t.video.videoHeight,
            frames: quality.totalVideoFrames || 0,
            objectFit: getComputedStyle(t.video).objectFit,
            screenLabel: !t.screen.hidden && t.screen.textContent,
            width: t.el.getBoundingClientRect().width,
          };
        });
    }

    canWatch(streamId) {
      const tile = this.tiles.get(streamId);
      if (tile) tile.watch.hidden = false;
    }

    tileState(streamId, state) {
      const tile = this.tiles.get(streamId);
      if (tile) tile.el.dataset.connection = state;
    }

    removeTile(streamId) {
      const tile = this.tiles.get(streamId);
      if (!tile) return;
      tile.video.srcObject = null;
      tile.el.remove();
      this.tiles.delete(streamId);
    }

    clearTiles() {
      for (const key of [...this.tiles.keys()]) this.removeTile(key);
    }

    badges(tile, audioMuted, videoMuted) {
      tile.micOff.hidden = !audioMuted;
      tile.cameraOff.hidden = !videoMuted;
      tile.el.classList.toggle('video-off', Boolean(videoMuted));
      tile.el.dataset.audioMuted = String(Boolean(audioMuted));
      tile.el.dataset.videoMuted = String(Boolean(videoMuted));
    }

    /** Names, mute badges and stats lines from the room's state. */
    refresh(room) {
      for (const stream of room.streams.values()) {
        const tile = this.tiles.get(stream.streamId);
        if (!tile) continue;
        const user = room.users.get(stream.userId);
        tile.name.textContent = (user && user.userName) || stream.userId;
        tile.el.classList.toggle('screen', Boolean(stream.isScreen));
        tile.screen.hidden = !stream.isScreen;
        this.badges(tile, stream.audioMuted, stream.videoMuted);
        const sub = room.subscriptions.get(stream.streamId);
        tile.stats.textContent = sub ? statsText(sub.last) : 'not watching';
      }
      const local = this.tiles.get('local');
      if (local && room.local) local.stats.textContent = statsText(room.local.last);
    }

    /** Fills the camera and microphone pickers (labels appear once allowed). */
    async devicesChanged() {
      if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
      const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
      for (const [selectId, kind, noun] of [['camera', 'videoinput', 'camera'], ['mic', 'audioinput', 'microphone']]) {
        const select = $(selectId);
        const keep = select.value;
        select.replaceChildren(new Option(`default ${noun}`, ''), new Option(`no ${noun}`, 'none'));
        devices.filter((d) => d.kind === kind && d.deviceId && d.deviceId !== 'default').forEach((d, i) => {
          select.add(new Option(d.label || `${noun} ${i + 1}`, d.deviceId));
        });
        if ([...select.options].some((o) => o.value === keep)) select.value = keep;
      }
    }
  }

  // ---------------------------------------------------------------- the page

  const FIELDS = ['server', 'app', 'room', 'user', 'name', 'role', 'signature', 'ctime'];
  const REMEMBERED = ['server', 'app', 'room', 'user', 'name', 'role'];

  function defaultServer() {
    if (!location.host) return 'ws://127.0.0.1:7880/ws';
    return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
  }

  /** Fields from, in order: the defaults, what was used last time, the URL
   *  (`?server=&app=&room=&user=&name=&role=&signature=&ctime=&camera=none&mic=none&simulcast=1&autojoin=1`). */
  function fillForm(params) {
    $('server').value = defaultServer();
    for (const id of REMEMBERED) {
      const saved = localStorage.getItem(`huddle.${id}`);
      if (saved != null) $(id).value = saved;
    }
    for (const id of FIELDS) {
      if (params.has(id)) $(id).value = params.get(id);
    }
    if (params.has('signature')) $('sig-pasted').checked = true;
    for (const id of ['camera', 'mic']) {
      if (params.get(id) === 'none') $(id).value = 'none';
    }
    if (params.get('simulcast') === '1') $('simulcast').checked = true;
  }

  function readForm() {
    for (const id of REMEMBERED) localStorage.setItem(`huddle.${id}`, $(id).value);
    return {
      server: $('server').value.trim(),
      app: $('app').value.trim(),
      room: $('room').value.trim(),
      user: $('user').value.trim(),
      name: $('name').value,
      role: Number($('role').value) === ROLE_PLAYER ? ROLE_PLAYER : ROLE_JOINER,
      pasted: $('sig-pasted').checked,
      token: $('token').value,
      signature: $('signature').value,
      ctime: $('ctime').value,
      camera: kioskPage ? 'none' : $('camera').value,
      mic: kioskPage ? 'none' : $('mic').value,
      subscribeAll: kioskPage || $('subscribe-all').checked,
      simulcast: !kioskPage && $('simulcast').checked,
      kiosk: kioskPage,
    };
  }

  /** `?kiosk=1`: a screen that shows the room's program and publishes nothing. */
  const kioskPage = new URLSearchParams(location.search).get('kiosk') === '1';

  const ui = new Ui();
  let room = new Room(ui);

  async function join() {
    if (room.state === State.JOINED || room.state === State.CONNECTING
      || room.state === State.RECONNECTING) return;
    ui.error('');
    ui.notice('');
    room = new Room(ui);
    try {
      await room.join(readForm());
    } catch (e) {
      room.fail(e);
      room.teardown('not connected');
    }
  }

  async function main() {
    const params = new URLSearchParams(location.search);
    fillForm(params);
    document.body.classList.toggle('kiosk', kioskPage);
    await ui.devicesChanged();
    if (navigator.mediaDevices) {
      navigator.mediaDevices.addEventListener('devicechange', () => ui.devicesChanged());
    }
    $('join-form').addEventListener('submit', (e) => {
      e.preventDefault();
      join();
    });
    $('leave').onclick = () => room.leave();
    $('mute-mic').onclick = () => room.setMuted('audio', !room.local.audioMuted).catch((e) => room.fail(e));
    $('mute-camera').onclick = () => room.setMuted('video', !room.local.videoMuted).catch((e) => room.fail(e));
    const rename = () => room.rename($('new-name').value).catch((e) => room.fail(e));
    $('rename').onclick = rename;
    $('new-name').onkeydown = (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        rename();
      }
    };
    $('switch-role').onclick = () => room
      .switchRole(room.me.role === ROLE_PLAYER ? ROLE_JOINER : ROLE_PLAYER)
      .catch((e) => room.fail(e));
    $('token').oninput = () => { $('sig-server').checked = true; };
    $('signature').oninput = () => { $('sig-pasted').checked = true; };
    setInterval(() => {
      if (room.state === State.JOINED || room.state === State.RECONNECTING) room.pollStats();
    }, STATS_INTERVAL_MS);
    window.huddle = { summary: () => room.summary(), join, leave: () => room.leave() };
    if (params.get('autojoin') === '1') join();
  }

  main();
})();
