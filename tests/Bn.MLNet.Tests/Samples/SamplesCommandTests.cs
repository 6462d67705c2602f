using System.CommandLine;
using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Bn.MLNet.Samples.Commands;
using Bn.MLNet.Samples.Experiments;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet.Tests.Samples;

/// <summary>The samples' commands that train: <c>predict</c> on a PNG, and a quick experiment.</summary>
[Collection(TorchGlobalStateCollection.Name)]
public class SamplesCommandTests
{
    [Fact]
    public void PredictOnAPngWrittenFromATestImageGivesThatImagesClass()
    {
        string dir = Directory.CreateTempSubdirectory("bnmlnet-predict-").FullName;
        try
        {
            var ml = new MLContext(seed: 1);
            IDataView train = SampleData.Load(ml, FashionMnistSplit.Train, null, 3000);
            var options = new BatchNormCnnOptions { Epochs = 2, Seed = 1, BatchSize = 64 };
            ITransformer model = SampleData.Pipeline(ml, options).Fit(train);
            string modelPath = Path.Combine(dir, "model.zip");
            ml.Model.Save(model, train.Schema, modelPath);

            // Pick test images the model classifies correctly and confidently from their raw pixels, then check the
            // PNG route (decode, resize, convert) through the saved model gives the same class.
            IdxLabeledImages test = FashionMnist.Read(null, FashionMnistSplit.Test, 200);
            var engine = SampleData.CreateEngine(ml, model, FashionMnist.FeatureLength);
            var chosen = new List<(string Path, string Class)>();
            for (int i = 0; i < test.Count && chosen.Count < 3; i++)
            {
                float[] pixels = test.Images.GetImage(i).ToArray().Select(b => (float)b).ToArray();
                string truth = FashionMnist.ClassNames[test.Labels[i]];
                var p = engine.Predict(new SampleData.ImageRow { Features = pixels });
                if (p.PredictedClass == truth && p.Score.Max() > 0.9f)
                {
                    string png = Path.Combine(dir, $"test-{i}.png");
                    ImageInput.SaveGreyPng(png, pixels, 28, 28);
                    chosen.Add((png, truth));
                }
            }

            Assert.NotEmpty(chosen);
            var fresh = new MLContext();
            fresh.ComponentCatalog.RegisterBatchNormCnn();
            ITransformer loaded = fresh.Model.Load(modelPath, out _);
            BatchNormCnnTransformer cnn = ModelCommands.Find(loaded)!;
            var results = ModelCommands.Classify(fresh, loaded, cnn, chosen.Select(c => c.Path)).ToList();
            for (int k = 0; k < chosen.Count; k++)
            {
                Assert.Null(results[k].Error);
                Assert.Equal(chosen[k].Class, results[k].PredictedClass);
            }

            // The command itself: exit code 0 for readable images, 2 when one cannot be decoded.
            Assert.Equal(0, ModelCommands.Predict(modelPath, chosen.Select(c => c.Path).ToArray()));
            string broken = Path.Combine(dir, "broken.png");
            File.WriteAllText(broken, "not an image");
            Assert.Equal(2, ModelCommands.Predict(modelPath, new[] { broken }));
            (model as IDisposable)?.Dispose();
            (loaded as IDisposable)?.Dispose();
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void TrainModelIsTheZipThatEvaluateAndPredictRead()
    {
        string dir = Directory.CreateTempSubdirectory("bnmlnet-train-model-").FullName;
        try
        {
            string model = Path.Combine(dir, "m.bin"), metrics = Path.Combine(dir, "metrics.json");
            int exit = Cli.CreateRootCommand().Parse([
                "train", "--train-limit", "600", "--test-limit", "200", "--epochs", "1", "--conv", "8x1", "--hidden", "32",
                "--batch-size", "50", "--quiet", "--model", model, "--metrics-out", metrics]).Invoke();
            Assert.Equal(0, exit);
            Assert.Equal(ModelCommands.ModelFileKind.MLNetZip, ModelCommands.Detect(model));
            Assert.False(File.Exists(model + ".partial"));

            // The zip scores the 200 test rows exactly as the train command measured them.
            double trainMeasured = System.Text.Json.JsonDocument.Parse(File.ReadAllText(metrics)).RootElement.GetProperty("testAccuracy").GetDouble();
            var ml = new MLContext();
            ITransformer loaded = ModelCommands.Load(ml, model);
            var m = ml.MulticlassClassification.Evaluate(loaded.Transform(SampleData.Load(ml, FashionMnistSplit.Test, null, 200)));
            Assert.Equal(trainMeasured, m.MicroAccuracy, 6);
            Assert.True(m.MicroAccuracy > 0.3, $"accuracy {m.MicroAccuracy}");

            Assert.Equal(0, ModelCommands.Evaluate(model, null, 200));

            // Test-time flip averaging: the train command's figure is what the zip gives with the option switched on.
            double flipMeasured = System.Text.Json.JsonDocument.Parse(File.ReadAllText(metrics)).RootElement.GetProperty("testAccuracyFlipAveraged").GetDouble();
            var bn = ModelCommands.Find(loaded)!;
            using (var flipped = bn.WithTestTimeFlipAveraging(true))
            {
                var chain = new TransformerChain<ITransformer>(((IEnumerable<ITransformer>)loaded).Select(t => ReferenceEquals(t, bn) ? flipped : t).ToArray());
                var f = ml.MulticlassClassification.Evaluate(chain.Transform(SampleData.Load(ml, FashionMnistSplit.Test, null, 200)));
                Assert.Equal(flipMeasured, f.MicroAccuracy, 6);
            }

            Assert.Equal(0, ModelCommands.Evaluate(model, null, 200, flipAverage: true));
            IdxLabeledImages test = FashionMnist.Read(null, FashionMnistSplit.Test, 1);
            string png = Path.Combine(dir, "test-0.png");
            ImageInput.SaveGreyPng(png, test.Images.GetImage(0).ToArray().Select(b => (float)b).ToArray(), 28, 28);
            Assert.Equal(0, ModelCommands.Predict(model, [png]));
            (loaded as IDisposable)?.Dispose();
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void EvaluateAndPredictAlsoReadANetworkSavedWithNetworkSave()
    {
        string dir = Directory.CreateTempSubdirectory("bnmlnet-raw-model-").FullName;
        try
        {
            TorchSharp.torch.manual_seed(3);
            var architecture = NetworkArchitecture.Default();
            architecture.ConvStages = [new ConvStage(4, 1, true)];
            architecture.HiddenLayers = [16];
            using var network = new BatchNormCnnNetwork(architecture);
            network.eval();
            string raw = Path.Combine(dir, "network.bin");
            network.Save(raw);
            Assert.Equal(ModelCommands.ModelFileKind.RawNetwork, ModelCommands.Detect(raw));

            // Wrapped in the main job's pipeline, it scores as the network itself does.
            var ml = new MLContext();
            ITransformer model = ModelCommands.Load(ml, raw);
            IDataView data = SampleData.Load(ml, FashionMnistSplit.Test, null, 20);
            float[][] scores = model.Transform(data).GetColumn<float[]>("Score").ToArray();
            IdxLabeledImages test = FashionMnist.Read(null, FashionMnistSplit.Test, 20);
            float[] pixels = Enumerable.Range(0, 20).SelectMany(i => test.Images.GetImage(i).ToArray().Select(b => (float)b)).ToArray();
            using (TorchSharp.torch.no_grad())
            {
                using var x = TorchSharp.torch.tensor(pixels, [20L, 784]);
                using var logits = network.forward(x);
                using var p = TorchSharp.torch.nn.functional.softmax(logits, 1);
                float[] expected = p.data<float>().ToArray();
                for (int i = 0; i < 20; i++)
                    for (int c = 0; c < 10; c++)
                        Assert.Equal(expected[i * 10 + c], scores[i][c], 1e-5);
            }

            Assert.Equal(0, ModelCommands.Evaluate(raw, null, 20));
            string png = Path.Combine(dir, "test-0.png");
            ImageInput.SaveGreyPng(png, pixels.AsSpan(0, 784), 28, 28);
            Assert.Equal(0, ModelCommands.Predict(raw, [png]));
            (model as IDisposable)?.Dispose();
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void QuickFigure1ExperimentWritesReportCsvAndPngFiles()
    {
        string dir = Directory.CreateTempSubdirectory("bnmlnet-figure1-").FullName;
        try
        {
            Assert.Equal(0, ExperimentCommand.Run("figure1", quick: true, dir, null, threads: null, seed: 1));
            string report = File.ReadAllText(Path.Combine(dir, "report.md"));
            Assert.Contains("| claim (paper) | measured here | verdict |", report);
            Assert.Contains("With BN", File.ReadAllText(Path.Combine(dir, "figure1a_test_accuracy.csv")));
            string[] percentileLines = File.ReadAllLines(Path.Combine(dir, "figure1bc_sigmoid_input_percentiles.csv"));
            Assert.Equal("run,step,layer,p15,p50,p85", percentileLines[0]);
            Assert.True(percentileLines.Length > 4);
            ExperimentPlots.AssertDecodable(dir, 3);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
