// A brand-new console app that consumes the Bn.MLNet package, used by scripts/package-smoke.sh:
//   SmokeApp train DATA MODEL   trains through mlContext.MulticlassClassification.Trainers.BatchNormCnn, evaluates,
//                               saves the model and prints "accuracy A"
//   SmokeApp score DATA MODEL   loads the model in this new process, evaluates it and prints "accuracy A"
// Each run first prints the ML.NET version it runs on, and "engine E", the scoring engine the transformer chose
// (OnnxRuntime when the app references Microsoft.ML.OnnxRuntime, LibTorch otherwise).
using Bn.MLNet;
using Bn.MLNet.Samples.Datasets;
using System.Reflection;
using Microsoft.ML;

if (args.Length != 3 || args[0] is not ("train" or "score"))
{
    Console.Error.WriteLine("usage: SmokeApp train|score <fashion-mnist folder> <model.zip>");
    return 2;
}

string dataDirectory = args[1], modelPath = args[2];
Console.WriteLine($"Microsoft.ML {typeof(MLContext).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion}");
var ml = new MLContext(seed: 1);
IDataView test = FashionMnist.LoadTest(ml, dataDirectory, limit: 1000);
if (args[0] == "train")
{
    IDataView train = FashionMnist.LoadTrain(ml, dataDirectory, limit: 2000);
    var trainer = ml.MulticlassClassification.Trainers.BatchNormCnn(epochs: 2, batchSize: 64, seed: 1);
    BatchNormCnnTransformer model = trainer.Fit(train);
    Console.WriteLine($"engine {model.ActiveScoringEngine}");
    var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
    ml.Model.Save(model, train.Schema, modelPath);
    Console.WriteLine($"accuracy {metrics.MicroAccuracy:F6} macro {metrics.MacroAccuracy:F4} log-loss {metrics.LogLoss:F4}");
    return metrics.MicroAccuracy >= 0.5 ? 0 : 1;
}

// A process that has not touched Bn.MLNet yet: register the loader, then load as any ML.NET model.
ml.ComponentCatalog.RegisterBatchNormCnn();
ITransformer loaded = ml.Model.Load(modelPath, out _);
Console.WriteLine($"engine {((BatchNormCnnTransformer)loaded).ActiveScoringEngine}");
var reloaded = ml.MulticlassClassification.Evaluate(loaded.Transform(test));
Console.WriteLine($"accuracy {reloaded.MicroAccuracy:F6}");
return 0;
