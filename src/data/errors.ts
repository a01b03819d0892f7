// Errors of the data layer: every message names the file (or folder) and says what to do.

/** A data file that is missing, corrupt, truncated or inconsistent with its companion file. */
export class DataFileError extends Error {
  readonly path: string;
  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super(`${path}: ${reason}`, options);
    this.name = 'DataFileError';
    this.path = path;
  }
}

/** A dataset folder that cannot be found or lacks the files a dataset needs. */
export class DatasetNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetNotFoundError';
  }
}
