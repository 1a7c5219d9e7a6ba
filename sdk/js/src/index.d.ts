// Types of @vft/client. The response shapes follow the schemas of the
// API's OpenAPI document (api/openapi.json); test/types.ts is checked
// against them with tsc.

export declare const DEFAULT_TIMEOUT_S: number;
export declare const DEFAULT_MEMORY: number;
export declare const DEFAULT_DEADLINE_S: number;

export declare class VFTError extends Error {}
export declare class DaemonNotFound extends VFTError {}
export declare class APIError extends VFTError {
  status: number;
  /** The API's own error text. */
  apiMessage: string;
}
export declare class JobFailed extends VFTError {
  record: JobRecord;
}

export type JobState = "offered" | "assigned" | "running" | "verifying" | "settling" | "done" | "failed" | "cancelled";

/** Schema Identity. */
export interface Identity {
  peer_id: string;
  wallet: string;
  mode: string;
  version: string;
  addrs: string[] | null;
  reachability?: Record<string, unknown>;
}

/** Schema Health. */
export interface Health {
  peers: number;
  nodes: number;
  clock_skew_ms: number;
  clock_skew_samples: number;
}

/** Schema Peer. */
export interface Peer {
  id: string;
  addr: string;
  direction: string;
  latency_ms: number;
  agent?: string;
  relayed?: boolean;
}

/** Schema NodeEntry: a heartbeat and this node's view of the peer. */
export interface NodeEntry {
  peer_id: string;
  self?: boolean;
  heartbeat: Record<string, unknown>;
  signed_at: string;
  received_at: string;
  expires_at: string;
  reputation: number;
  excluded: boolean;
}

/** Schema WalletInfo. */
export interface WalletInfo {
  address: string;
  /** Lamports. */
  balance: number;
  mint: string;
  /** Base units of mint. */
  token_balance: number;
}

/** Schema UnitsCurrency. */
export interface Currency {
  mint?: string;
  unit: string;
  decimals: number;
}

/** Schema Earnings. */
export interface Earnings {
  wallet: string;
  earned: { currency: Currency; amount: number; jobs: number }[] | null;
  paid: { currency: Currency; amount: number; jobs: number }[] | null;
  jobs: Record<string, unknown>[] | null;
}

/** Schema JobChange: one stage a job reached. */
export interface JobChange {
  state: JobState;
  /** RFC 3339 time. */
  at: string;
  note?: string;
}

/** Schema JobVerdictRecord. */
export interface VerdictRecord {
  accepted?: string;
  agreed: string[] | null;
  dissented: string[] | null;
  reasons?: Record<string, string> | null;
  reason: string;
  author: string;
}

/** Schema JobRecord. */
export interface JobRecord {
  id: string;
  role: "submitter" | "worker";
  state: JobState;
  /** Base64 of the signed offer. */
  offer: string | null;
  workers?: string[] | null;
  /** The accepted result's CID. */
  result?: string;
  reports?: Record<string, string> | null;
  verdict?: VerdictRecord;
  payouts?: Record<string, unknown>[] | null;
  reason?: string;
  waiting?: string;
  history: JobChange[] | null;
  updated_at: string;
}

/** Schema JobStatus: GET /api/v1/jobs/{id}. */
export interface JobStatus extends JobRecord {
  currency?: Currency;
}

/** Schema GetResult. */
export interface GetResult {
  cid: string;
  output: string;
  blocks: number;
  bytes: number;
  fetched: number;
}

/** An event of the live feed (GET /api/v1/events). */
export type FeedEvent =
  | { type: "job"; data: JobRecord }
  | { type: "status"; data: { time: string; peers: number; nodes: number; free_slots: number; max_jobs: number; gpus: unknown[] | null } }
  | { type: "log"; data: { time: string; level: "info" | "warn" | "error"; message: string; job?: string } }
  | { type: "resync"; data: { reason: string } };

export type Progress = (done: number, total: number) => void;

export interface ClientOptions {
  /** The node's repo (default $VFT_PATH, else ~/.vft); Node.js only. */
  repo?: string;
  /** The daemon's address, e.g. "127.0.0.1:5001" (default: the repo's api file). */
  api?: string;
  /** The API token (default: the repo's api.token). */
  token?: string;
  /** Bound on each short call, in ms (default 60000). */
  timeoutMs?: number;
}

interface JobOptions {
  /** With image: the command to run instead of the image's entrypoint. */
  command?: string[];
  /** Mounted under /input: paths ("dir/", "dir", "file", "src:name") or CIDs ("CID", "CID:name"). */
  inputs?: string[];
  args?: string[];
  env?: Record<string, string>;
  /** Workers that run the job (k, default 1). */
  redundancy?: number;
  verify?: "exact" | "tolerance" | "spot" | "custom";
  /** Agreeing workers needed (default a majority). */
  quorum?: number;
  /** Paid per accepted worker, in the smallest unit of the node's currency. */
  reward?: number;
  /** Per worker: seconds or "2m" (default 10 min). */
  timeout?: number | string;
  /** Bytes of memory (default 512 MiB). */
  memory?: number;
  seed?: number;
  mint?: string;
  /** How long the node looks for workers and results: seconds or "1h" (default 1 h). */
  deadline?: number | string;
}

export type SubmitOptions =
  | { spec: string; wasm?: undefined; image?: undefined; [option: string]: unknown }
  | ({ wasm: string; spec?: undefined; image?: undefined } & JobOptions)
  | ({ image: string; spec?: undefined; wasm?: undefined } & JobOptions);

export interface WaitOptions {
  timeoutMs?: number;
  onStage?: (change: JobChange, record: JobRecord) => void;
  /** Print each stage (stderr in Node.js, the console in a browser). */
  progress?: boolean;
  /** Reject with JobFailed unless the job is done (default true). */
  check?: boolean;
}

export declare function findRepo(repo?: string): string;
export declare function parseDuration(value: number | string): number;

export declare class Client {
  constructor(opts?: ClientOptions);
  readonly base: string;
  readonly repo?: string;
  call<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  id(): Promise<Identity>;
  health(): Promise<Health>;
  peers(): Promise<Peer[]>;
  nodes(): Promise<NodeEntry[]>;
  wallet(): Promise<WalletInfo>;
  earnings(recent?: number): Promise<Earnings>;
  openapi(): Promise<Record<string, unknown>>;
  jobs(): Promise<JobRecord[]>;
  job(id: string): Job;
  add(path: string, opts?: { pin?: boolean; hidden?: boolean; onProgress?: Progress }): Promise<string>;
  get(cid: string, path: string, opts?: { onProgress?: Progress }): Promise<GetResult>;
  submit(opts: SubmitOptions): Promise<Job>;
  events(opts?: { signal?: AbortSignal }): AsyncGenerator<FeedEvent, void, undefined>;
  openEvents(opts?: { signal?: AbortSignal }): Promise<AsyncGenerator<FeedEvent, void, undefined>>;
}

export declare class Job {
  constructor(client: Client, id: string);
  readonly client: Client;
  readonly id: string;
  record(): Promise<JobStatus>;
  status(): Promise<JobState>;
  cancel(reason?: string): Promise<void>;
  wait(opts?: WaitOptions): Promise<JobRecord>;
  result(path: string): Promise<string>;
  readResult(name: string): Promise<Uint8Array>;
  resultJson<T = unknown>(name: string): Promise<T>;
}
