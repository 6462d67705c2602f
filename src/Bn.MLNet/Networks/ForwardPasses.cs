namespace Bn.MLNet.Networks;

/// <summary>
/// How many rows one inference forward pass takes at a time: as many as keep every activation within
/// <see cref="ActivationBudgetBytes"/>. libtorch allocates each activation with malloc; glibc serves blocks of tens of
/// megabytes by mapping fresh pages and, when much of the heap's top is free, returns it to the kernel, so every pass
/// over large activations page-faults them in again. Measured on the default network at one thread: batches of 64 or
/// 128 rows (activations up to 12.8 MB) scored 3,140–3,160 rows/s with about 5,000 minor page faults per 10,000 rows;
/// 256 rows (25.7 MB) 2,170 rows/s with 730,000 faults, 512 rows 1,600 rows/s. Training keeps its batch size (its
/// activations live until backward); scoring and evaluation split larger batches into passes of equal size, on ONNX
/// Runtime too, whose memory arena keeps the largest blocks a session was asked for.
/// </summary>
internal static class ForwardPasses
{
    /// <summary>The largest activation one pass may produce: 16 MiB.</summary>
    public const long ActivationBudgetBytes = 16L << 20;

    /// <summary>Bytes of the largest float32 activation one row produces in <paramref name="a"/>'s forward pass.</summary>
    public static long LargestActivationPerRow(NetworkArchitecture a)
    {
        long largest = a.InputLength;
        long h = a.InputHeight, w = a.InputWidth;
        foreach (ConvStage stage in a.ConvStages)
        {
            largest = Math.Max(largest, stage.Channels * h * w);
            if (stage.MaxPool)
                (h, w) = (h / 2, w / 2);
        }

        foreach (int width in a.HiddenLayers)
            largest = Math.Max(largest, width);
        return largest * sizeof(float);
    }

    /// <summary>
    /// <paramref name="rows"/> rows as consecutive passes (start, count) of equal size (within one row), each within the
    /// activation budget; one pass when all fit.
    /// </summary>
    public static IEnumerable<(int Start, int Count)> Split(int rows, NetworkArchitecture a)
    {
        long fit = Math.Max(1, ActivationBudgetBytes / Math.Max(1, LargestActivationPerRow(a)));
        int passes = (int)Math.Min(rows, (rows + fit - 1) / fit);
        for (int p = 0, start = 0; p < passes; p++)
        {
            int count = (rows - start) / (passes - p);
            yield return (start, count);
            start += count;
        }
    }
}
