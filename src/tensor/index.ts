// The engine: lazy tensors, ops, autodiff, compilation to ONNX and execution on ONNX Runtime.
export * from './dtype.js';
export { Tensor, Variable, ShapeError, constant, symbolicInput, numel, fmtShape, type Shape, type Storage, type Attrs } from './tensor.js';
export * from './ops.js';
export { compile, evaluate, setRuntimeDefaults, getRuntimeDefaults, engineStats, endProfiling, type CompileOptions, type RuntimeOptions, type Device, type InputSpec, type CompiledFunction } from './compile.js';
export { setWeightCache } from './spill.js';
export { gradients, valueAndGrad, grad, hasVJP, registerVJP, NON_DIFFERENTIABLE, type VJP } from './autodiff.js';
export { Generator, RandomState, defaultGenerator, manualSeed } from './random.js';
export { f16ToF32, bf16ToF32, f32ToF16, f32ToBf16 } from './dtype-convert.js';
export { interpolate, kresize, gaussianKernel1d, type InterpolateMode, type InterpolateOptions, type KResizeOptions } from './resample.js';
