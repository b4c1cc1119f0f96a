// The experiment API behind `ikun experiment`: plan and run a grid, aggregate a folder, write SLURM scripts.
export { DEFAULT_GRID, DEFAULT_HESSIAN, gridPoints, planExperiment, readExperiment, runName, type ExperimentFile, type ExperimentSpec, type GridPoint, type HessianSettings } from './grid.js';
export { runExperiment, type ExperimentOptions, type ExperimentOutcome } from './coordinator.js';
export { runPoint, type PointAction, type PointHooks } from './run-point.js';
export { pointStatus, type PointState, type PointStatus } from './status.js';
export { aggregateRuns, BASELINE_INITS, type Aggregate, type Efficiency, type FinishedRun, type GroupResult } from './aggregate.js';
export { collectRuns, resultsCsv, writeResults, type ResultsFile } from './results.js';
export { meanSd, firstEpochReaching, type MeanSd } from './stats.js';
export { sbatchScript, submitSbatch, type SlurmOptions } from './slurm.js';
