// Wire shapes of the MLflow REST API as Cairn answers it (only the fields the UI reads).
// int64 values arrive as strings or numbers depending on the route, so times are `number | string`.

export type Int64 = number | string;

export interface KeyValue {
  key: string;
  value: string;
}

export interface Experiment {
  experiment_id: string;
  name: string;
  artifact_location?: string;
  lifecycle_stage: "active" | "deleted";
  last_update_time?: Int64;
  creation_time?: Int64;
  tags?: KeyValue[];
}

export type RunStatus = "RUNNING" | "SCHEDULED" | "FINISHED" | "FAILED" | "KILLED";

export interface RunInfo {
  run_id: string;
  run_name?: string;
  experiment_id: string;
  user_id?: string;
  status: RunStatus;
  start_time?: Int64;
  end_time?: Int64;
  artifact_uri?: string;
  lifecycle_stage: "active" | "deleted";
}

/** A metric value: MLflow sends NaN and the infinities as the strings "NaN", "Infinity", "-Infinity". */
export type WireNumber = number | string;

export interface Metric {
  key: string;
  value: WireNumber;
  timestamp: Int64;
  step?: Int64;
}

export interface DatasetInput {
  dataset: { name: string; digest: string; source_type?: string; source?: string; schema?: string; profile?: string };
  tags?: KeyValue[];
}

export interface Run {
  info: RunInfo;
  data: { metrics?: Metric[]; params?: KeyValue[]; tags?: KeyValue[] };
  inputs?: { dataset_inputs?: DatasetInput[]; model_inputs?: { model_id: string }[] };
  outputs?: { model_outputs?: { model_id: string; step: Int64 }[] };
}

export interface RunsPage {
  runs?: Run[];
  next_page_token?: string;
}

export interface ExperimentsPage {
  experiments?: Experiment[];
  next_page_token?: string;
}

export interface FileInfo {
  path: string;
  is_dir: boolean;
  file_size?: Int64;
}

export interface LoggedModel {
  info: { model_id: string; name: string; source_run_id?: string; artifact_uri?: string; status?: string; creation_timestamp_ms?: Int64 };
}

export interface ModelVersion {
  name: string;
  version: string;
  run_id?: string;
  current_stage?: string;
  status?: string;
  aliases?: string[];
  creation_timestamp?: Int64;
}
