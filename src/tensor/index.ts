// The engine: lazy tensors, ops, autodiff, compilation to ONNX and execution on ONNX Runtime.
export * from './dtype.js';
export { Tensor, Variable, ShapeError, constant, symbolicInput, numel, fmtShape, type Shape, type Storage, type Attrs } from './tensor.js';
export * from './ops.js';
export { compile, evaluate, setRuntimeDefaults, getRuntimeDefaults, engineStats, type CompileOptions, type RuntimeOptions, type Device, type InputSpec, type CompiledFunction } from './compile.js';
export { gradients, valueAndGrad, grad, hasVJP, registerVJP, NON_DIFFERENTIABLE, type VJP } from './autodiff.js';
