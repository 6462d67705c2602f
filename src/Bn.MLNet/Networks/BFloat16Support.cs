using System.Runtime.Intrinsics.X86;

namespace Bn.MLNet.Networks;

/// <summary>
/// Whether this processor computes bfloat16 natively, the condition under which
/// <see cref="NetworkArchitecture.BFloat16Convolutions"/> makes training faster (elsewhere libtorch emulates bfloat16
/// and the option slows training down).
/// </summary>
/// <example>
/// <code>
/// var options = new BatchNormCnnOptions { BFloat16Convolutions = BFloat16Support.IsAccelerated };
/// </code>
/// </example>
public static class BFloat16Support
{
    /// <summary>
    /// True when the processor reports AVX512-BF16 (CPUID leaf 7, sub-leaf 1, EAX bit 5) or AMX-BF16 (leaf 7,
    /// sub-leaf 0, EDX bit 22) and the operating system has AVX-512 enabled; false otherwise, including on every
    /// non-x86 processor. Read once per process.
    /// </summary>
    public static bool IsAccelerated { get; } = Detect();

    private static bool Detect()
    {
        if (!X86Base.IsSupported || !Avx512F.IsSupported)
            return false;
        var (maxLeaf, _, _, _) = X86Base.CpuId(0, 0);
        if (maxLeaf < 7)
            return false;
        var (_, _, _, leaf7Edx) = X86Base.CpuId(7, 0);
        var (leaf7Sub1Eax, _, _, _) = X86Base.CpuId(7, 1);
        const int Avx512Bf16Bit = 1 << 5;
        const int AmxBf16Bit = 1 << 22;
        return (leaf7Sub1Eax & Avx512Bf16Bit) != 0 || (leaf7Edx & AmxBf16Bit) != 0;
    }
}
