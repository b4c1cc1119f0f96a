// Data loading: IDX files (raw or gzip), MNIST / Fashion-MNIST, the bundled Fashion-MNIST sample, data
// sets from arrays, seeded subsets and a seeded mini-batch loader. Node built-ins only.
export { parseIdx, readIdx, type IdxArray } from './data/idx.js';
export { fromArrays, imageSize, sampleIndices, subset, type Dataset, type DatasetSplits } from './data/dataset.js';
export { dataNotFoundMessage, loadFashionMnist, loadMnist, loadSample, packageRoot, sampleDir, type DataSourceWording, type LoadOptions } from './data/mnist.js';
export { DataLoader, type Batch, type DataLoaderOptions } from './data/loader.js';
