using System.Runtime.InteropServices;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet.Data;

/// <summary>
/// Reads the feature vector of a row of an <see cref="IDataView"/> (a known-size vector of Single, Byte or Double,
/// dense or sparse) as floats: the one reader behind training (<see cref="DataViewBatchSource"/>) and scoring.
/// </summary>
/// <remarks>A vector of another length is refused with <see cref="InvalidDataException"/> naming the column and row.
/// With a data name (training), a NaN or infinite value (or a Double outside Single's range) is refused with
/// <see cref="InvalidDataException"/> naming the column, data, row, slot and value; without one (scoring) values pass as
/// they are, so such a row scores NaN.</remarks>
internal abstract class FeatureVectorReader
{
    /// <summary>Whether <paramref name="itemType"/> is an item type the reader converts (Single, Byte or Double).</summary>
    public static bool IsSupported(DataViewType itemType) =>
        itemType == NumberDataViewType.Single || itemType == NumberDataViewType.Byte || itemType == NumberDataViewType.Double;

    /// <summary>A reader of <paramref name="column"/> of <paramref name="row"/> (vectors of <paramref name="length"/> values).</summary>
    /// <param name="row">The row or cursor the values come from.</param>
    /// <param name="column">The vector column (of <paramref name="row"/>'s schema).</param>
    /// <param name="length">The expected vector length.</param>
    /// <param name="dataName">What the data is (for example "the training data") to refuse non-finite values, or null to pass them.</param>
    public static FeatureVectorReader Create(DataViewRow row, DataViewSchema.Column column, int length, string? dataName)
    {
        var item = ((VectorDataViewType)column.Type).ItemType;
        if (item == NumberDataViewType.Single)
            return new Typed<float>(row, column, length, dataName);
        if (item == NumberDataViewType.Byte)
            return new Typed<byte>(row, column, length, dataName);
        if (item == NumberDataViewType.Double)
            return new Typed<double>(row, column, length, dataName);
        throw new ArgumentException($"Feature column '{column.Name}' has unsupported item type {item}; expected Single, Byte or Double.");
    }

    /// <summary>Reads the current row's vector into <paramref name="destination"/> (its first length values).</summary>
    public abstract void Read(Span<float> destination);

    private sealed class Typed<T> : FeatureVectorReader
        where T : struct
    {
        private readonly DataViewRow _row;
        private readonly ValueGetter<VBuffer<T>> _getter;
        private readonly string _name;
        private readonly int _length;
        private readonly string? _dataName;
        private VBuffer<T> _buffer;

        public Typed(DataViewRow row, DataViewSchema.Column column, int length, string? dataName)
        {
            _row = row;
            _getter = row.GetGetter<VBuffer<T>>(column);
            _name = column.Name;
            _length = length;
            _dataName = dataName;
        }

        public override void Read(Span<float> destination)
        {
            _getter(ref _buffer);
            if (_buffer.Length != _length)
            {
                throw new InvalidDataException(
                    $"Feature column '{_name}' holds a vector of length {_buffer.Length} at row {_row.Position}; expected {_length}.");
            }

            destination = destination[.._length];
            var values = _buffer.GetValues();
            if (_buffer.IsDense)
            {
                Convert(values, destination);
                CheckFinite(destination, values, default);
                return;
            }

            destination.Clear();
            var indices = _buffer.GetIndices();
            Span<float> one = stackalloc float[1];
            for (int i = 0; i < values.Length; i++)
            {
                Convert(values.Slice(i, 1), one);
                destination[indices[i]] = one[0];
            }

            CheckFinite(destination, values, indices);
        }

        /// <summary>Refuses NaN and infinity when reading training data (bytes are always finite); names the column, row, slot and value.</summary>
        private void CheckFinite(ReadOnlySpan<float> converted, ReadOnlySpan<T> values, ReadOnlySpan<int> indices)
        {
            if (_dataName is null || typeof(T) == typeof(byte) || !HasNonFinite(converted))
            {
                return;
            }

            int slot = 0;
            while (float.IsFinite(converted[slot]))
            {
                slot++;
            }

            int valueIndex = indices.IsEmpty ? slot : indices.IndexOf(slot);
            double original = typeof(T) == typeof(double) ? MemoryMarshal.Cast<T, double>(values)[valueIndex] : converted[slot];
            throw new InvalidDataException(NonFiniteFeatureMessage.Create(_name, _dataName, _row.Position, slot, original));
        }

        private static bool HasNonFinite(ReadOnlySpan<float> values)
        {
            // x − x is 0 for finite x and NaN for NaN and ±∞, so one sum tells whether any value is not finite.
            float sum = 0;
            foreach (float v in values)
            {
                sum += v - v;
            }

            return sum != 0;
        }

        /// <summary>Widens or narrows to float; the type tests are resolved when the JIT specializes T.</summary>
        private static void Convert(ReadOnlySpan<T> source, Span<float> destination)
        {
            if (typeof(T) == typeof(float))
            {
                MemoryMarshal.Cast<T, float>(source).CopyTo(destination);
            }
            else if (typeof(T) == typeof(byte))
            {
                var bytes = MemoryMarshal.Cast<T, byte>(source);
                for (int i = 0; i < bytes.Length; i++)
                {
                    destination[i] = bytes[i];
                }
            }
            else
            {
                var doubles = MemoryMarshal.Cast<T, double>(source);
                for (int i = 0; i < doubles.Length; i++)
                {
                    destination[i] = (float)doubles[i];
                }
            }
        }
    }
}
