namespace Bn.MLNet.Data;

/// <summary>One mini-batch in reusable buffers: rows [0, <see cref="Count"/>) are valid.</summary>
internal sealed class MiniBatch
{
    /// <summary>Creates buffers for up to <paramref name="capacity"/> rows of <paramref name="featureLength"/> values.</summary>
    public MiniBatch(int capacity, int featureLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(featureLength, 1);
        Features = new float[capacity * featureLength];
        Labels = new int[capacity];
        Targets = new float[capacity];
        FeatureLength = featureLength;
    }

    /// <summary>Row-major features: row i occupies [i×FeatureLength, (i+1)×FeatureLength).</summary>
    public float[] Features { get; }

    /// <summary>Zero-based class indices, one per row (classification).</summary>
    public int[] Labels { get; }

    /// <summary>The label as a number, one per row: the class index, 0/1 for binary classification, the value for regression.</summary>
    public float[] Targets { get; }

    /// <summary>Sets row <paramref name="row"/>'s label from its number (the class index too, for classification).</summary>
    public void SetLabel(int row, float target)
    {
        Targets[row] = target;
        Labels[row] = target is >= 0 and <= int.MaxValue ? (int)target : 0;
    }

    /// <summary>Values per row.</summary>
    public int FeatureLength { get; }

    /// <summary>Rows currently held.</summary>
    public int Count { get; set; }

    /// <summary>Maximum rows.</summary>
    public int Capacity => Labels.Length;
}
