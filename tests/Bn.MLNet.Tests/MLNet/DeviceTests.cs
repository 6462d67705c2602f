using Bn.MLNet.Networks;
using Bn.MLNet.Normalization;
using Bn.MLNet.Training;
using Microsoft.ML;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Tests.MLNet;

/// <summary>
/// Devices: MLContext.GpuDeviceId and FallbackToCpu are honoured (this machine has no GPU and the tests reference
/// TorchSharp-cpu, so the GPU path itself is untested), and the device-independent code path trains as the CPU kernels do.
/// </summary>
[Collection(TorchGlobalStateCollection.Name)]
public class DeviceTests
{
    [Fact]
    public void TheDeviceRuleFollowsTheContextSettings()
    {
        var warnings = new List<string>();
        Assert.Null(TorchDevice.Choose(null, fallbackToCpu: false, cudaDevices: 0, warnings.Add));
        Assert.Empty(warnings);
        Assert.Equal(1, TorchDevice.Choose(1, fallbackToCpu: false, cudaDevices: 2, warnings.Add));
        Assert.Null(TorchDevice.Choose(0, fallbackToCpu: true, cudaDevices: 0, warnings.Add));
        Assert.Contains("MLContext.GpuDeviceId is 0", Assert.Single(warnings));
        Assert.Contains("running on the CPU (MLContext.FallbackToCpu is true)", warnings[0]);

        var e = Assert.Throws<InvalidOperationException>(() => TorchDevice.Choose(3, fallbackToCpu: false, cudaDevices: 2, null));
        Assert.Contains("libtorch sees 2 CUDA device(s), numbered 0 to 1", e.Message);
        e = Assert.Throws<InvalidOperationException>(() => TorchDevice.Choose(0, fallbackToCpu: false, cudaDevices: 0, null));
        Assert.Contains("TorchSharp-cuda-linux", e.Message);
        Assert.Contains("MLContext.FallbackToCpu = true", e.Message);
    }

    [Fact]
    public void AGpuRequestOnACpuOnlyLibtorchFallsBackWithALogLineOrFailsClearly()
    {
        Assert.False(torch.cuda.is_available(), "these tests assume the CPU build of libtorch (TorchSharp-cpu)");
        var ml = new MLContext(seed: 1) { GpuDeviceId = 0, FallbackToCpu = true };
        var log = new List<string>();
        ml.Log += (_, e) => { lock (log) log.Add(e.Message); };
        var train = ml.Data.LoadFromEnumerable(MLNetTestData.Rows(Bn.MLNet.Samples.Datasets.FashionMnistSplit.Train, 200));
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train).Transform(train);
        using (var model = ml.MulticlassClassification.Trainers.BatchNormCnn(MLNetTestData.SmallOptions()).Fit(keyed))
        {
            using BatchNormCnnNetwork copy = model.CopyNetwork();
            Assert.Equal(DeviceType.CPU, copy.Device.type);
        }

        Assert.Contains(log, m => m.Contains("MLContext.GpuDeviceId is 0") && m.Contains("running on the CPU"));

        ml.FallbackToCpu = false;
        var e = Assert.Throws<InvalidOperationException>(() => ml.MulticlassClassification.Trainers.BatchNormCnn(MLNetTestData.SmallOptions()).Fit(keyed));
        Assert.Contains("TorchSharp-cuda-linux", e.Message);
    }

    /// <summary>
    /// The code path other devices run (BN and Batch Renorm on libtorch operations), forced on the CPU, trains the network
    /// as the kernels do: the same losses to float32 rounding, step by step.
    /// </summary>
    [Theory]
    [InlineData(NormalizationKind.Batch)]
    [InlineData(NormalizationKind.BatchRenorm)]
    public void TheDeviceIndependentPathTrainsTheNetworkAsTheKernelsDo(NormalizationKind normalization)
    {
        var a = new NetworkArchitecture
        {
            InputHeight = 8,
            InputWidth = 8,
            ConvStages = [new ConvStage(6, 1, true)],
            HiddenLayers = [12],
            ClassCount = 3,
            Normalization = normalization,
            BatchRenormWarmupSteps = 0,
        };
        var options = new TrainerOptions { Epochs = 3, BatchSize = 16, LearningRate = 0.05, Threads = 1, Seed = 2, LogEverySteps = 1 };
        var random = new Random(4);
        var features = Enumerable.Range(0, 96 * 64).Select(_ => (float)random.NextDouble() * 255).ToArray();
        var labels = Enumerable.Range(0, 96).Select(i => i % 3).ToArray();

        TrainingHistory Train()
        {
            using var network = new BatchNormCnnNetwork(a, seed: 5);
            return new Trainer(options).Train(network, Bn.MLNet.Data.BatchSource.FromArrays(features, labels, 64, seed: 1));
        }

        TrainingHistory kernels = Train();
        TrainingHistory tensors;
        using (BatchNormFunction.ForceTensorPath())
        {
            tensors = Train();
        }

        Assert.Equal(kernels.Steps.Count, tensors.Steps.Count);
        for (int i = 0; i < kernels.Steps.Count; i++)
            Assert.True(Math.Abs(kernels.Steps[i].TrainLoss - tensors.Steps[i].TrainLoss) < 1e-3, $"step {i}: {kernels.Steps[i].TrainLoss} vs {tensors.Steps[i].TrainLoss}");
    }
}
