using System.CommandLine;
using Bn.MLNet.Data;
using Bn.MLNet.Samples.Commands;
using Bn.MLNet.Samples.Experiments;
using Microsoft.ML;
using SkiaSharp;

namespace Bn.MLNet.Tests.Samples;

/// <summary>The samples app's command line: options parse, bad ones fail with clear messages.</summary>
public class SamplesCliTests
{
    private static IReadOnlyList<string> Errors(params string[] args) =>
        Cli.CreateRootCommand().Parse(args).Errors.Select(e => e.Message).ToList();

    [Fact]
    public void ValidCommandLinesParse()
    {
        Assert.Empty(Errors());
        Assert.Empty(Errors("--epochs", "3", "--train-limit", "1000"));
        Assert.Empty(Errors("train", "--epochs", "2", "--batch-size", "64", "-n", "Group"));
        Assert.Empty(Errors("experiment", "figure1", "--quick"));
        Assert.Empty(Errors("bench", "--repeats", "3"));
    }

    [Theory]
    [InlineData("--epochs", "abc")]
    [InlineData("train", "--epochs", "two")]
    [InlineData("train", "--batch-size", "1.5")]
    [InlineData("bench", "--repeats", "x")]
    public void BadNumbersAreRefusedNamingTheValue(params string[] args)
    {
        var errors = Errors(args);
        Assert.NotEmpty(errors);
        Assert.Contains(errors, e => e.Contains(args[^1], StringComparison.Ordinal));
    }

    [Fact]
    public void OutOfRangeNumbersAreRefused()
    {
        Assert.Contains(Errors("--epochs", "0"), e => e.Contains("--epochs must be at least 1", StringComparison.Ordinal));
        Assert.Contains(Errors("experiment", "figure1", "--threads", "0"), e => e.Contains("--threads", StringComparison.Ordinal));
        Assert.Contains(Errors("evaluate", "--model", ThisAssemblyPath(), "--limit", "0"), e => e.Contains("--limit", StringComparison.Ordinal));
    }

    [Fact]
    public void MissingFilesAreRefusedNamingThem()
    {
        string missing = Path.Combine(Path.GetTempPath(), "bnmlnet-no-such-model.zip");
        Assert.Contains(Errors("evaluate", "--model", missing), e => e.Contains(missing, StringComparison.Ordinal));
        Assert.Contains(Errors("predict", "--model", ThisAssemblyPath(), "--image", "/no/such/image.png"), e => e.Contains("/no/such/image.png", StringComparison.Ordinal));
        Assert.NotEmpty(Errors("evaluate"));
        Assert.NotEmpty(Errors("predict", "--model", ThisAssemblyPath()));
    }

    [Fact]
    public void UnknownExperimentIsRefusedListingTheKnownOnes()
    {
        var errors = Errors("experiment", "figure9");
        Assert.Contains(errors, e => e.Contains("figure9", StringComparison.Ordinal) && e.Contains("learning-rates", StringComparison.Ordinal));
    }

    [Fact]
    public void EvaluateRefusesAFileThatIsNotAModel()
    {
        string notAModel = Path.Combine(Path.GetTempPath(), $"bnmlnet-not-a-model-{Environment.ProcessId}.zip");
        File.WriteAllText(notAModel, "not a zip");
        try
        {
            Assert.Equal(2, ModelCommands.Evaluate(notAModel, null, 10));
        }
        finally
        {
            File.Delete(notAModel);
        }
    }

    private static string ThisAssemblyPath() => typeof(SamplesCliTests).Assembly.Location;
}

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
            var pngs = Directory.GetFiles(dir, "*.png");
            Assert.Equal(3, pngs.Length);
            foreach (string png in pngs)
            {
                using var bitmap = SKBitmap.Decode(png);
                Assert.NotNull(bitmap);
                Assert.True(bitmap.Width >= 600 && bitmap.Height >= 300, $"{png} is {bitmap.Width}×{bitmap.Height}");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
