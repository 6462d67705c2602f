using Bn.MLNet.Networks;
using TorchSharp;

namespace Bn.MLNet.Tests.Networks;

/// <summary>The bfloat16 detection agrees with the flags Linux reports for this processor; its speed measurement leaves libtorch as it was.</summary>
[Collection(TorchGlobalStateCollection.Name)]
public class BFloat16SupportTests
{
    [Fact]
    public void IsAcceleratedMatchesTheKernelsCpuFlags()
    {
        if (!OperatingSystem.IsLinux() || !File.Exists("/proc/cpuinfo"))
            return;   // the flags below are Linux's; elsewhere there is nothing independent to compare with

        string[] flags = File.ReadLines("/proc/cpuinfo")
            .First(line => line.StartsWith("flags", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries);
        bool expected = flags.Contains("avx512f") && (flags.Contains("avx512_bf16") || flags.Contains("amx_bf16"));

        Assert.Equal(expected, BFloat16Support.IsAccelerated);
    }

    [Fact]
    public void TheSpeedMeasurementReadsNoGlobalRandomStateAndKeepsTheThreadCount()
    {
        Assert.Equal(BFloat16Support.ConvolutionSpeedup >= 1.1, BFloat16Support.IsFasterThanFloat32);
        if (!BFloat16Support.IsAccelerated)
        {
            Assert.Equal(0, BFloat16Support.ConvolutionSpeedup);   // nothing to measure: libtorch would emulate bfloat16
            return;
        }

        int threads = torch.get_num_threads();
        torch.manual_seed(7);
        float[] expected = torch.rand(8).data<float>().ToArray();
        torch.manual_seed(7);

        double speedup = BFloat16Support.MeasureSpeedup();

        Assert.True(double.IsFinite(speedup) && speedup > 0, $"speed-up {speedup}");
        Assert.Equal(threads, torch.get_num_threads());
        Assert.Equal(expected, torch.rand(8).data<float>().ToArray());
    }
}
