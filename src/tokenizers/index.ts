// Tokenizers: CLIP byte-level BPE (open_clip and Hugging Face conventions) and its text cleaning.
export * from './clip.js';
export { fixText, ftfyUnescapeHtml, htmlUnescape, pyLower, pyStrip, whitespaceClean } from './text.js';
