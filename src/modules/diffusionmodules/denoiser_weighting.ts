// sgm/modules/diffusionmodules/denoiser_weighting.py duplicates loss_weighting.py class for class;
// the same classes serve both modules' targets.
export { UnitWeighting, EDMWeighting, VWeighting, EpsWeighting, type DiffusionLossWeighting } from './loss_weighting.js';
