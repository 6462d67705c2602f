using Bn.MLNet.Networks;

namespace Bn.MLNet.Tests.Networks;

/// <summary>The bfloat16 detection agrees with the flags Linux reports for this processor.</summary>
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
}
