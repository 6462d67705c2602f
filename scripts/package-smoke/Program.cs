// A brand-new console app that consumes the Bn.MLNet package: a short training and an Evaluate through
// mlContext.Transforms.BatchNormCnn, then save, load in a fresh MLContext and score. Used by scripts/package-smoke.sh.
using Bn.MLNet;
using Bn.MLNet.Samples.Datasets;
using Microsoft.ML;

string dataDirectory = args.Length > 0 ? args[0] : throw new ArgumentException("usage: SmokeApp <fashion-mnist folder>");
var ml = new MLContext(seed: 1);
IDataView train = FashionMnist.LoadTrain(ml, dataDirectory, limit: 2000);
IDataView test = FashionMnist.LoadTest(ml, dataDirectory, limit: 1000);

var pipeline = ml.Transforms.BatchNormCnn(epochs: 2, batchSize: 64, seed: 1);
ITransformer model = pipeline.Fit(train);
var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
Console.WriteLine($"accuracy {metrics.MicroAccuracy:F4} macro {metrics.MacroAccuracy:F4} log-loss {metrics.LogLoss:F4}");

string path = Path.Combine(Path.GetTempPath(), $"smoke-{Environment.ProcessId}.zip");
ml.Model.Save(model, train.Schema, path);
var fresh = new MLContext();
fresh.ComponentCatalog.RegisterBatchNormCnn();
ITransformer loaded = fresh.Model.Load(path, out _);
var reloaded = fresh.MulticlassClassification.Evaluate(loaded.Transform(test));
File.Delete(path);
Console.WriteLine($"reloaded accuracy {reloaded.MicroAccuracy:F4}");
if (metrics.MicroAccuracy < 0.5 || Math.Abs(reloaded.MicroAccuracy - metrics.MicroAccuracy) > 1e-9)
{
    Console.Error.WriteLine("smoke test failed: accuracy too low or changed after reload");
    return 1;
}

return 0;
