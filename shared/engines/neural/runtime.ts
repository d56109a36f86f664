/** The TensorFlow.js-backed parts of the neural engine, loaded only when a process trains or samples. */
export { trainLocal, calibrateOutputBiases, clippedGradientSum } from "./train.js";
export { sampleRows } from "./sample.js";
