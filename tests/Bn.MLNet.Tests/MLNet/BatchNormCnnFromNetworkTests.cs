using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet.Tests.MLNet;

/// <summary><see cref="BatchNormCnnTransformer.FromNetwork"/>: a network trained outside ML.NET becomes a model zip.</summary>
[Collection(TorchGlobalStateCollection.Name)]
public class BatchNormCnnFromNetworkTests
{
    /// <summary>
    /// Every network setting reaches the transformer. The fixture sets each property of <see cref="NetworkArchitecture"/> to a
    /// value other than its default, and the test checks that by reflection, so a new setting fails here until the
    /// fixture sets it; the transformer's architecture must then equal the network's in every field.
    /// </summary>
    [Fact]
    public void EveryNetworkSettingIsCarried()
    {
        var a = new NetworkArchitecture
        {
            InputChannels = 2,
            InputHeight = 9,
            InputWidth = 10,
            ConvStages = new List<ConvStage> { new(8, 1, true) },
            HiddenLayers = new[] { 16 },
            Dropout = 0.1,
            ClassCount = 3,
            Task = NetworkTask.BinaryClassification,
            Standardization = StandardizationKind.PerFeature,
            Normalization = NormalizationKind.BatchRenorm,
            Activation = ActivationKind.Tanh,
            BatchNormMomentum = 0.2,
            BatchNormEps = 1e-4,
            GroupCount = 4,
            BatchRenormRMax = 2,
            BatchRenormDMax = 3,
            BatchRenormWarmupSteps = 10,
            BFloat16Convolutions = true,
        };
        var defaults = new NetworkArchitecture();
        foreach (var property in typeof(NetworkArchitecture).GetProperties().Where(p => p.CanWrite))
        {
            string value = System.Text.Json.JsonSerializer.Serialize(property.GetValue(a));
            Assert.True(value != System.Text.Json.JsonSerializer.Serialize(property.GetValue(defaults)),
                $"the fixture leaves NetworkArchitecture.{property.Name} at its default; give it another value");
        }

        using var network = new BatchNormCnnNetwork(a, seed: 1);
        using var wrapped = BatchNormCnnTransformer.FromNetwork(new MLContext(1), network, Array.Empty<string>());
        Assert.Equal(a.ToJson(), wrapped.Architecture.ToJson());
    }

    [Fact]
    public void AWrappedNetworkSavesLoadsAndScoresLikeTheNetworkAndOwnsItsCopy()
    {
        var ml = new MLContext(seed: 1);
        var fitted = MLNetTestData.Pipeline;
        var trained = ((IEnumerable<ITransformer>)fitted.Model).OfType<BatchNormCnnTransformer>().Single();
        BatchNormCnnTransformer wrapped;
        using (var network = CopyOf(trained.Network))
        {
            wrapped = BatchNormCnnTransformer.FromNetwork(ml, network, trained.ClassNames);
        }

        // The caller's network is disposed; the transformer scores with its own copy, as the fitted one does.
        IDataView keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(fitted.Train).Transform(fitted.Test);
        float[][] expected = MLNetTestData.Scores(trained, keyed);
        MLNetTestData.AssertClose(expected, MLNetTestData.Scores(wrapped, keyed), 1e-6f);
        Assert.Equal(trained.ClassNames, wrapped.ClassNames);

        string path = Path.Combine(Path.GetTempPath(), $"bnmlnet-from-network-{Environment.ProcessId}.zip");
        try
        {
            ml.Model.Save(wrapped, keyed.Schema, path);
            var fresh = new MLContext();
            var loaded = (BatchNormCnnTransformer)fresh.Model.Load(path, out _);
            MLNetTestData.AssertClose(expected, MLNetTestData.Scores(loaded, keyed), 1e-6f);
            var predicted = loaded.Transform(keyed).Schema["PredictedLabel"];
            VBuffer<ReadOnlyMemory<char>> names = default;
            predicted.GetKeyValues(ref names);
            Assert.Equal(trained.ClassNames, names.DenseValues().Select(n => n.ToString()).ToArray());
            loaded.Dispose();
        }
        finally
        {
            File.Delete(path);
            wrapped.Dispose();
        }
    }

    [Fact]
    public void WrongClassNamesAndPopulationStatisticsAreRefusedWithReasons()
    {
        var ml = new MLContext();
        using var network = new BatchNormCnnNetwork(NetworkArchitecture.Default());
        var ex = Assert.Throws<ArgumentException>(() => BatchNormCnnTransformer.FromNetwork(ml, network, ["a", "b"]));
        Assert.Contains("2 class names were given for a MulticlassClassification network, which needs 10", ex.Message);
        var names = FashionMnist.ClassNames.ToArray();
        ex = Assert.Throws<ArgumentException>(() => BatchNormCnnTransformer.FromNetwork(ml, network, names,
            new BatchNormCnnOptions { InferenceMode = BatchNormInferenceMode.PopulationStatistics }));
        Assert.Contains("PopulationStatistics.Recompute", ex.Message);
    }

    private static BatchNormCnnNetwork CopyOf(BatchNormCnnNetwork network)
    {
        using var stream = new MemoryStream();
        network.Save(stream);
        stream.Position = 0;
        return BatchNormCnnNetwork.Load(stream);
    }
}
