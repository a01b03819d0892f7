// Training: the run loop of `sgm train` (main.py), the compiled training step, optimizers.
export { train, TrainError, type TrainOptions, type TrainResult } from './main.js';
export { DiffusionTrainer, trainableParameters, type StepResult, type TrainerState } from './trainer.js';
export * from './optim.js';
